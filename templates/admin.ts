import { type AccountView, html, type SafeHtml } from "../mod.ts";
import { layout } from "./base.ts";

/**
 * `GET /admin/`: the live figures, one row per process, and the largest groups. The tables
 * start empty; `admin.js` fills them from `WS /ws/admin/` every second.
 */
export function adminPage(account: AccountView): SafeHtml {
  return layout({
    title: "Admin",
    account,
    scripts: ["admin.js"],
    body: html`
      <div class="presence-heading">
        <h1>Admin</h1>
        <p id="connection-state" class="connection-state" data-state="connecting" role="status">
          Connecting…
        </p>
      </div>
      <noscript>
        <p class="notice">The figures are live only with JavaScript: without it they stay empty.</p>
      </noscript>
      <p class="admin-summary" id="admin-summary">
        <span id="total-connections">–</span> connections,
        <span id="total-groups">–</span> groups,
        <span id="total-in">–</span> messages/s in,
        <span id="total-out">–</span> messages/s out,
        <span id="total-drops">–</span> drops/s
        across <span id="total-processes">–</span> process(es)
      </p>
      ${figureTable("processes", "Processes", [
        "Process",
        "Connections",
        "Groups",
        "In/s",
        "Out/s",
        "Deliveries/s",
        "Drops/s",
        "Drops",
        "RSS MiB",
        "Loop lag ms",
        "Up",
      ])}
      ${figureTable("routes", "Connections by route", ["Route", "Open"])}
      ${figureTable("groups", "Largest groups", ["Group", "Members"])}
    `,
  });
}

// One table of live figures, empty until `admin.js` fills its body: in a region of its own that
// scrolls sideways on a narrow screen (focusable, so a keyboard scrolls it too), not the page.
// The region alone is named by the heading: a named section around it would be a second
// landmark of the same name.
function figureTable(id: string, title: string, columns: string[]): SafeHtml {
  return html`
    <section>
      <h2 id="${id}-title">${title}</h2>
      <div class="table-scroll" role="region" aria-labelledby="${id}-title" tabindex="0">
        <table id="${id}" class="admin-table">
          <thead>
            <tr>${columns.map((column) => html`<th scope="col">${column}</th>`)}</tr>
          </thead>
          <tbody></tbody>
        </table>
      </div>
    </section>
  `;
}
