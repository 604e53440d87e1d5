/**
 * A URL as the command-line tools show it in their messages: a user name and password in it
 * (`http://ada:secret@host/`) are the user's secret, and its query may hold a token.
 */
export function shownUrl(url: string): string {
  const parsed = URL.parse(url);
  if (parsed === null) return url.includes("@") ? "(a URL with credentials, not shown)" : url;
  const hidden = parsed.username !== "" || parsed.password !== "";
  const query = parsed.search === "" ? "" : "?***";
  parsed.username = "";
  parsed.password = "";
  parsed.search = "";
  parsed.hash = "";
  const text = `${parsed.href}${query}`;
  return hidden ? text.replace("//", "//***@") : text;
}
