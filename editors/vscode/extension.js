// Starts `runbook lsp` (stdio) for *.runbook files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("runbook").get("server.path", "runbook");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "runbook",
    "Runbook",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "runbook" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
