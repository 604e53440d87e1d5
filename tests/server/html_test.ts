import { assertEquals, assertStringIncludes } from "@std/assert";
import { escapeHtml, html, htmlResponse, SafeHtml } from "../../server/html.ts";

Deno.test("interpolated text is escaped, so a name cannot become markup", () => {
  const name = `<script>alert("x")</script> & 'friends'`;
  assertEquals(
    html`<p>${name}</p>`.toString(),
    "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;friends&#39;</p>",
  );
});

Deno.test("quotes in attribute values cannot close the attribute", () => {
  const room = `" onmouseover="alert(1)`;
  const markup = html`<div data-room="${room}"></div>`.toString();
  assertEquals(markup, `<div data-room="&quot; onmouseover=&quot;alert(1)"></div>`);
  const single = html`<div title='${"it's"}'></div>`.toString();
  assertEquals(single, `<div title='it&#39;s'></div>`);
});

Deno.test("markup built with html is nested as is, not escaped twice", () => {
  const inner = html`<b>${"Tom & Jerry"}</b>`;
  assertEquals(html`<p>${inner}</p>`.toString(), "<p><b>Tom &amp; Jerry</b></p>");
});

Deno.test("arrays are joined, each item escaped or nested on its own", () => {
  const names = ["<a>", "b&c"];
  assertEquals(
    html`<ul>${names.map((name) => html`<li>${name}</li>`)}</ul>`.toString(),
    "<ul><li>&lt;a&gt;</li><li>b&amp;c</li></ul>",
  );
  assertEquals(html`${["<", html`<br>`, [">"]]}`.toString(), "&lt;<br>&gt;");
});

Deno.test("null, undefined and false render nothing; numbers and true render as text", () => {
  assertEquals(html`[${null}${undefined}${false}]`.toString(), "[]");
  assertEquals(html`[${0}${1.5}${true}]`.toString(), "[01.5true]");
});

Deno.test("a plain string that looks like markup is still escaped", () => {
  // Only SafeHtml is trusted; a string is never, whatever it contains.
  assertEquals(html`${"<b>bold</b>"}`.toString(), "&lt;b&gt;bold&lt;/b&gt;");
  assertEquals(html`${new SafeHtml("<b>bold</b>")}`.toString(), "<b>bold</b>");
});

Deno.test("non-ASCII text passes through unchanged", () => {
  assertEquals(html`<h1>${"東京 · café"}</h1>`.toString(), "<h1>東京 · café</h1>");
  assertEquals(escapeHtml("plain"), "plain");
});

Deno.test("an HTML response says it is UTF-8 HTML and keeps the given status", async () => {
  const response = htmlResponse(html`<p>${"é"}</p>`, { status: 404 });
  assertEquals(response.status, 404);
  assertEquals(response.headers.get("content-type"), "text/html; charset=utf-8");
  assertStringIncludes(await response.text(), "<p>é</p>");
});
