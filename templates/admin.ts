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
      <p class="admin-summary" id="admin-summary">
        <span id="total-connections">0</span> connections,
        <span id="total-groups">0</span> groups,
        <span id="total-in">0</span> messages/s in,
        <span id="total-out">0</span> messages/s out,
        <span id="total-drops">0</span> drops/s
        across <span id="total-processes">0</span> process(es)
      </p>
      <section aria-labelledby="processes-title">
        <h2 id="processes-title">Processes</h2>
        <div class="table-scroll" role="region" aria-labelledby="processes-title" tabindex="0">
          <table id="processes" class="admin-table">
            <thead>
              <tr>
                <th scope="col">Process</th>
                <th scope="col">Connections</th>
                <th scope="col">Groups</th>
                <th scope="col">In/s</th>
                <th scope="col">Out/s</th>
                <th scope="col">Deliveries/s</th>
                <th scope="col">Drops/s</th>
                <th scope="col">Drops</th>
                <th scope="col">RSS MiB</th>
                <th scope="col">Loop lag ms</th>
                <th scope="col">Up</th>
              </tr>
            </thead>
            <tbody></tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="routes-title">
        <h2 id="routes-title">Connections by route</h2>
        <div class="table-scroll" role="region" aria-labelledby="routes-title" tabindex="0">
          <table id="routes" class="admin-table">
            <thead>
              <tr>
                <th scope="col">Route</th>
                <th scope="col">Open</th>
              </tr>
            </thead>
            <tbody></tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="groups-title">
        <h2 id="groups-title">Largest groups</h2>
        <div class="table-scroll" role="region" aria-labelledby="groups-title" tabindex="0">
          <table id="groups" class="admin-table">
            <thead>
              <tr>
                <th scope="col">Group</th>
                <th scope="col">Members</th>
              </tr>
            </thead>
            <tbody></tbody>
          </table>
        </div>
      </section>
    `,
  });
}
