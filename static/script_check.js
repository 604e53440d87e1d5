// A classic script, run before the page's modules: a module that cannot load (a file the server
// answers 404 for, as a process of the previous version does during a rolling deploy; a network
// cut) leaves the page as it was served, "Connecting…" for good, with nothing said. The first
// such failure is said at the top of the page instead, with what to do.
(() => {
  let told = false;
  addEventListener("error", (event) => {
    if (told || !(event.target instanceof HTMLScriptElement)) return;
    told = true;
    const notice = document.createElement("p");
    notice.className = "notice";
    notice.id = "scripts-failed";
    notice.setAttribute("role", "alert");
    notice.textContent = "This page could not load its scripts. Reload it to try again.";
    const show = () => document.querySelector("main")?.prepend(notice);
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
    else show();
  }, true); // capture: a script's error does not bubble
})();
