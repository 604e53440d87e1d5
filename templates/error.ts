import { html, htmlResponse, type SafeHtml } from "../mod.ts";
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

/** The site's {@linkcode errorPage} as a response with `status` (the app's `ErrorPage`). */
export function errorPageResponse(status: number, title: string, detail: string): Response {
  return htmlResponse(errorPage(status, title, detail), { status });
}
