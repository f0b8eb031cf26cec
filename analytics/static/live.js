// The live view without reloading: the server sends the rendered panel (server-sent events); put it in place.
// Without this script the page still works: its "Refresh" link reloads it.
(function () {
  var panel = document.getElementById("live-panel");
  if (!panel || !window.EventSource) return;
  var status = document.getElementById("live-status");
  var events = new EventSource("/dashboard/live/events");
  events.addEventListener("panel", function (event) {
    var fresh = new DOMParser().parseFromString(event.data, "text/html").getElementById("live-panel");
    if (fresh) panel.replaceChildren.apply(panel, Array.from(fresh.childNodes));
    if (status) status.textContent = "Updating by itself.";
  });
  events.onerror = function () {
    if (status) status.textContent = "Connection lost; trying again.";
  };
})();
