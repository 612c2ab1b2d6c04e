// The run status page follows its request: reads status.json every few seconds until it ends.
// Without JavaScript the page's Refresh link does the same.
(function () {
  "use strict";
  var box = document.getElementById("run-status");
  if (!box || box.dataset.ended === "true") { return; }
  var words = {queued: "Queued: waiting for the report's worker", running: "Running",
               succeeded: "Succeeded: the new version is published", failed: "Failed",
               cancelled: "Cancelled", expired: "Expired: no worker took it in time"};
  var ended = {succeeded: true, failed: true, cancelled: true, expired: true};
  function when(text) { return text ? text.replace("T", " ").replace("Z", " UTC") : "\u2014"; }
  function show(run) {
    var state = document.getElementById("run-state");
    state.textContent = run.status;
    state.className = "badge status-" + run.status;
    var line = words[run.status] || run.status;
    if (run.status === "running" && run.stage) { line += " (" + run.stage + ")"; }
    if (run.cancel_requested && !ended[run.status]) { line += "; cancel asked, the worker stops at its next step"; }
    var said = document.getElementById("run-words");
    if (said.textContent !== line) { said.textContent = line; }
    var error = document.getElementById("run-error");
    error.textContent = run.error_line || "";
    error.hidden = !run.error_line;
    document.getElementById("run-started").textContent = when(run.started_at);
    document.getElementById("run-finished").textContent = when(run.finished_at);
    if (run.page_url) {
      document.getElementById("run-link").href = run.page_url;
      document.getElementById("run-result").hidden = false;
    }
    if (ended[run.status]) {
      document.getElementById("run-cancel").hidden = true;
      document.getElementById("run-refresh").hidden = true;
    }
    return !ended[run.status];
  }
  var every = (parseInt(box.dataset.pollSeconds, 10) || 2) * 1000;
  function poll() {
    fetch(box.dataset.statusUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (answer) { if (!answer.ok) { throw new Error(answer.status); } return answer.json(); })
      .then(function (run) { if (show(run)) { setTimeout(poll, every); } })
      .catch(function () { setTimeout(poll, every * 5); });  // signed out or offline: slower, the link still works
  }
  setTimeout(poll, every);
}());
