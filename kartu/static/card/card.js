/* Reveal / hide the full NIK on an HTML card (only present when the page passed it). */
(function () {
  "use strict";
  if (window.__kartuCard) return;
  window.__kartuCard = true;
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("[data-nik-toggle]");
    if (!btn) return;
    var span = btn.parentNode.querySelector("[data-nik-full]");
    if (!span) return;
    var shown = btn.getAttribute("aria-pressed") === "true";
    span.textContent = shown ? span.getAttribute("data-nik-masked") : span.getAttribute("data-nik-full");
    btn.setAttribute("aria-pressed", shown ? "false" : "true");
    btn.textContent = shown ? btn.getAttribute("data-show") : btn.getAttribute("data-hide");
  });
})();
