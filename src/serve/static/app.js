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
  var pending = document.getElementById("pending");
  var template = document.getElementById("decide-template");
  function approvalOf(key) {
    var found = null;
    pending.querySelectorAll(".approval").forEach(function (d) {
      if (d.dataset.key === key) found = d;
    });
    return found;
  }
  // A new question: its form from the template, without reloading.
  function ask(r) {
    if (!pending || !template || approvalOf(r.key)) return;
    var div = document.createElement("div");
    div.className = "approval";
    div.dataset.key = r.key;
    var p = document.createElement("p");
    var b = document.createElement("b");
    b.textContent = r.key;
    p.appendChild(b);
    p.appendChild(document.createTextNode(" asked " + r.ts + ": " + r.detail));
    div.appendChild(p);
    div.appendChild(template.content.cloneNode(true));
    var form = div.querySelector("form");
    if (form) {
      form.setAttribute("action", "/runs/" + encodeURIComponent(run) + "/approvals/" + encodeURIComponent(r.key));
    }
    pending.appendChild(div);
    pending.hidden = false;
  }
  function answered(key) {
    var d = pending && approvalOf(key);
    if (d) d.remove();
    if (pending && !pending.querySelector(".approval")) pending.hidden = true;
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
    if (r.kind === "approval_asked" && r.key) { ask(r); }
    if ((r.kind === "approval_given" || r.kind === "approval_refused") && r.key) { answered(r.key); }
    // The end: the page shows the outcome, the failure and the approvals.
    if (r.kind === "run_finished") {
      setTimeout(function () { location.reload(); }, 300);
    }
  });
  src.addEventListener("end", function () { src.close(); });
})();
