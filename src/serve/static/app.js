// runbook serve: the live decision log of a run page (server-sent
// events), the graph recoloured as steps end. No library, no CDN.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || log.dataset.live !== "true") return;
  var run = log.dataset.run;
  var body = log.querySelector("tbody");
  var status = {
    node_ready: "running", action_started: "running",
    node_succeeded: "succeeded", node_failed: "failed",
    node_skipped: "skipped", approval_asked: "waiting",
    approval_given: "running"
  };
  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  var src = new EventSource("/runs/" + encodeURIComponent(run) + "/events?after=" + log.dataset.after);
  src.addEventListener("row", function (e) {
    var r = JSON.parse(e.data);
    var tr = document.createElement("tr");
    tr.className = "ev " + r.kind;
    tr.dataset.seq = r.seq;
    [r.seq, r.ts, r.kind, r.node, r.detail].forEach(function (t) { cell(tr, String(t)); });
    body.appendChild(tr);
    var s = status[r.kind];
    if (s && r.node) {
      var g = document.querySelector('g.node[data-node="' + CSS.escape(r.node) + '"]');
      if (g) { g.setAttribute("class", "node " + s); g.dataset.status = s; }
    }
    // A new question, or the end: the page shows the forms and the outcome.
    if (r.kind === "approval_asked" || r.kind === "run_finished") {
      setTimeout(function () { location.reload(); }, 300);
    }
  });
  src.addEventListener("end", function () { src.close(); });
})();
