import { html, type SafeHtml } from "./html.ts";
import { layout } from "./base.ts";

/** The page for 4xx and 5xx answers. */
export function errorPage(status: number, title: string, detail: string): SafeHtml {
  return layout({
    title: `${status} ${title}`,
    body: html`<h1>${status} ${title}</h1>
<p class="error-detail">${detail}</p>
<p><a href="/chat/">Go to the chat rooms</a></p>`,
  });
}
