//! `runbook lsp`: a Language Server Protocol server over stdio
//! (`lsp-server` + `lsp-types`). Diagnostics are the compiler's
//! (`compile::check`), names come from the same pest parse
//! ([`index::Index`]), formatting is `runbook fmt`.

mod index;
mod position;

use crate::compile;
use crate::diagnostics::{Diag, Level};
use crate::source::Source;
use index::{Index, Kind};
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References,
    Rename, Request as _,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, Diagnostic, DiagnosticSeverity, DocumentSymbol, Hover,
    HoverContents, Location, MarkupContent, MarkupKind, NumberOrString, OneOf,
    PublishDiagnosticsParams, ServerCapabilities, SymbolKind, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use position::LineIndex;
use std::collections::HashMap;

/// The language's keywords, read from the grammar (`kw_*` rules, whose
/// human name is the word in backquotes), and its scalar types.
fn keywords() -> Vec<String> {
    let words = crate::syntax::Rule::all_rules()
        .iter()
        .filter(|r| format!("{r:?}").starts_with("kw_"))
        .filter_map(|r| {
            let name = crate::syntax::human_name(*r);
            name.strip_prefix('`')?
                .strip_suffix('`')
                .map(str::to_string)
        });
    let types = [
        "string", "int", "float", "bool", "duration", "and", "or", "not",
    ];
    let mut all: Vec<String> = words.chain(types.map(str::to_string)).collect();
    all.sort();
    all.dedup();
    all
}
/// The requests answered (besides `initialize` and `shutdown`).
const SUPPORTED: &[&str] = &[
    HoverRequest::METHOD,
    GotoDefinition::METHOD,
    References::METHOD,
    Completion::METHOD,
    DocumentSymbolRequest::METHOD,
    Formatting::METHOD,
    Rename::METHOD,
];

/// Runs the server on stdin/stdout until the client says `exit`.
pub fn serve_stdio() -> Result<(), String> {
    let (connection, io_threads) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    io_threads.join().map_err(|e| e.to_string())
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(lsp_types::CompletionOptions::default()),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// One open document: its text, and what was last learnt from it.
struct Document {
    text: String,
    lines: LineIndex,
    /// The index of the last text that parsed (kept while the user types
    /// something that does not, so that completion still knows the names).
    index: Index,
}

struct Server<'a> {
    connection: &'a Connection,
    documents: HashMap<String, Document>,
}

pub fn serve(connection: &Connection) -> Result<(), String> {
    let caps = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    connection.initialize(caps).map_err(|e| e.to_string())?;
    let mut server = Server {
        connection,
        documents: HashMap::new(),
    };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection
                    .handle_shutdown(&request)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(());
                }
                let response = server.request(request);
                server.send(Message::Response(response))?;
            }
            Message::Notification(n) => server.notification(n)?,
            Message::Response(_) => {}
        }
    }
    Ok(())
}

impl Server<'_> {
    fn send(&self, message: Message) -> Result<(), String> {
        self.connection
            .sender
            .send(message)
            .map_err(|e| e.to_string())
    }

    fn notification(&mut self, n: Notification) -> Result<(), String> {
        let uri = match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = params(n.params)?;
                self.update(p.text_document.uri.clone(), p.text_document.text);
                p.text_document.uri
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = params(n.params)?;
                // Full sync: the last change holds the whole text.
                let Some(change) = p.content_changes.into_iter().last() else {
                    return Ok(());
                };
                self.update(p.text_document.uri.clone(), change.text);
                p.text_document.uri
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = params(n.params)?;
                self.documents.remove(p.text_document.uri.as_str());
                return self.publish(p.text_document.uri, Vec::new());
            }
            _ => return Ok(()),
        };
        let diagnostics = self.diagnostics(&uri);
        self.publish(uri, diagnostics)
    }

    fn update(&mut self, uri: Uri, text: String) {
        let previous = self.documents.remove(uri.as_str()).map(|d| d.index);
        let index = Index::build(&text).or(previous).unwrap_or_default();
        let lines = LineIndex::new(&text);
        self.documents
            .insert(uri.as_str().to_string(), Document { text, lines, index });
    }

    fn publish(&self, uri: Uri, diagnostics: Vec<Diagnostic>) -> Result<(), String> {
        let params = PublishDiagnosticsParams::new(uri, diagnostics, None);
        self.send(Message::Notification(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            params,
        )))
    }

    fn diagnostics(&self, uri: &Uri) -> Vec<Diagnostic> {
        let Some(doc) = self.documents.get(uri.as_str()) else {
            return Vec::new();
        };
        let report = compile::check(&Source::new(uri.path().as_str(), doc.text.clone()));
        report
            .diags
            .iter()
            .map(|d| diagnostic(uri, doc, d))
            .collect()
    }

    fn request(&mut self, request: Request) -> Response {
        use lsp_server::ErrorCode;
        let id = request.id.clone();
        if !SUPPORTED.contains(&request.method.as_str()) {
            let message = format!("unsupported request {}", request.method);
            return Response::new_err(id, ErrorCode::MethodNotFound as i32, message);
        }
        match self.answer(request) {
            Ok(value) => Response::new_ok(id, value),
            Err(message) => Response::new_err(id, ErrorCode::InvalidParams as i32, message),
        }
    }

    fn answer(&mut self, request: Request) -> Result<serde_json::Value, String> {
        let method = request.method.clone();
        let value = match method.as_str() {
            HoverRequest::METHOD => {
                let p: lsp_types::HoverParams = params(request.params)?;
                json(self.hover(&p.text_document_position_params))
            }
            GotoDefinition::METHOD => {
                let p: lsp_types::GotoDefinitionParams = params(request.params)?;
                let at = &p.text_document_position_params;
                json(self.at(at).and_then(|(doc, name)| {
                    let def = doc.index.def(name)?;
                    Some(location(&at.text_document.uri, doc, def.name_span))
                }))
            }
            References::METHOD => {
                let p: lsp_types::ReferenceParams = params(request.params)?;
                let at = &p.text_document_position;
                json(self.at(at).map(|(doc, name)| {
                    let def = doc
                        .index
                        .def(name)
                        .filter(|_| p.context.include_declaration)
                        .map(|d| d.name_span);
                    def.into_iter()
                        .chain(doc.index.uses(name))
                        .map(|span| location(&at.text_document.uri, doc, span))
                        .collect::<Vec<_>>()
                }))
            }
            Completion::METHOD => {
                let p: lsp_types::CompletionParams = params(request.params)?;
                json(self.completion(&p.text_document_position.text_document.uri))
            }
            DocumentSymbolRequest::METHOD => {
                let p: lsp_types::DocumentSymbolParams = params(request.params)?;
                json(self.symbols(&p.text_document.uri))
            }
            Formatting::METHOD => {
                let p: lsp_types::DocumentFormattingParams = params(request.params)?;
                json(self.format(&p.text_document.uri))
            }
            Rename::METHOD => {
                let p: lsp_types::RenameParams = params(request.params)?;
                json(self.rename(&p)?)
            }
            _ => serde_json::Value::Null, // not in SUPPORTED: refused above
        };
        Ok(value)
    }

    /// The document and the declared name at a position.
    fn at(&self, at: &lsp_types::TextDocumentPositionParams) -> Option<(&Document, &str)> {
        let doc = self.documents.get(at.text_document.uri.as_str())?;
        let offset = doc.lines.offset(&doc.text, at.position);
        let name = doc.index.name_at(offset)?;
        doc.index.def(name)?;
        Some((doc, name))
    }

    fn hover(&self, at: &lsp_types::TextDocumentPositionParams) -> Option<Hover> {
        let (doc, name) = self.at(at)?;
        let def = doc.index.def(name)?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: format!(
                    "**{}** `{}`\n\n```runbook\n{}\n```",
                    def.kind.word(),
                    def.name,
                    def.detail
                ),
            }),
            range: None,
        })
    }

    fn completion(&self, uri: &Uri) -> Vec<CompletionItem> {
        let names = self
            .documents
            .get(uri.as_str())
            .into_iter()
            .flat_map(|doc| {
                doc.index.defs.iter().map(|d| CompletionItem {
                    label: d.name.clone(),
                    kind: Some(completion_kind(d.kind)),
                    detail: Some(d.kind.word().to_string()),
                    ..CompletionItem::default()
                })
            });
        let keywords = keywords().into_iter().map(|k| CompletionItem {
            label: k,
            kind: Some(CompletionItemKind::KEYWORD),
            ..CompletionItem::default()
        });
        // The built-in functions of conditions: `length(pods)`.
        let functions = crate::plan::Func::ALL.iter().map(|f| CompletionItem {
            label: f.name().to_string(),
            kind: Some(CompletionItemKind::FUNCTION),
            detail: Some("function".to_string()),
            ..CompletionItem::default()
        });
        names.chain(keywords).chain(functions).collect()
    }

    fn symbols(&self, uri: &Uri) -> Vec<DocumentSymbol> {
        let Some(doc) = self.documents.get(uri.as_str()) else {
            return Vec::new();
        };
        doc.index
            .defs
            .iter()
            .map(|d| {
                #[allow(deprecated)] // `deprecated` is a required field of the struct
                DocumentSymbol {
                    name: d.name.clone(),
                    detail: Some(d.kind.word().to_string()),
                    kind: symbol_kind(d.kind),
                    tags: None,
                    deprecated: None,
                    range: doc.lines.range(&doc.text, d.span.0, d.span.1),
                    selection_range: doc.lines.range(&doc.text, d.name_span.0, d.name_span.1),
                    children: None,
                }
            })
            .collect()
    }

    /// One edit replacing the whole text, or none when it is formatted or
    /// does not compile (its diagnostics say why).
    fn format(&self, uri: &Uri) -> Option<Vec<TextEdit>> {
        let doc = self.documents.get(uri.as_str())?;
        let source = Source::new(uri.path().as_str(), doc.text.clone());
        let formatted = crate::fmt::format_checked(&source).ok()?;
        if formatted == doc.text {
            return Some(Vec::new());
        }
        let range = doc.lines.range(&doc.text, 0, doc.text.len());
        Some(vec![TextEdit::new(range, formatted)])
    }

    fn rename(&self, p: &lsp_types::RenameParams) -> Result<Option<WorkspaceEdit>, String> {
        let new = &p.new_name;
        let valid = new.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && new.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`{new}` is not a name: letters, digits and `_`, not starting with a digit"
            ));
        }
        let at = &p.text_document_position;
        let Some((doc, name)) = self.at(at) else {
            return Ok(None);
        };
        let mut spans: Vec<(usize, usize)> = doc.index.uses(name).collect();
        spans.extend(doc.index.def(name).map(|d| d.name_span));
        let edits = spans
            .into_iter()
            .map(|(s, e)| TextEdit::new(doc.lines.range(&doc.text, s, e), new.clone()))
            .collect();
        // lsp-types keys its edits by `Uri` (whose parsed parts are cached
        // inside); nothing mutates it while it is a key.
        #[allow(clippy::mutable_key_type)]
        let changes = HashMap::from([(at.text_document.uri.clone(), edits)]);
        Ok(Some(WorkspaceEdit::new(changes)))
    }
}

/// The first label gives the range; the others (an unclosed block's
/// opening, the first of two declarations...) are related locations.
fn diagnostic(uri: &Uri, doc: &Document, d: &Diag) -> Diagnostic {
    let (span, label) = d
        .labels
        .first()
        .map_or(((0, 0), ""), |(s, l)| ((s.start, s.end), l.as_str()));
    let mut message = d.message.clone();
    if !label.is_empty() {
        message.push_str(&format!(": {label}"));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    Diagnostic {
        range: doc.lines.range(&doc.text, span.0, span.1),
        severity: Some(match d.level {
            Level::Error => DiagnosticSeverity::ERROR,
            Level::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("runbook".to_string()),
        message,
        related_information: (d.labels.len() > 1).then(|| {
            d.labels[1..]
                .iter()
                .map(|(span, label)| lsp_types::DiagnosticRelatedInformation {
                    location: location(uri, doc, (span.start, span.end)),
                    message: label.clone(),
                })
                .collect()
        }),
        ..Diagnostic::default()
    }
}

fn location(uri: &Uri, doc: &Document, (start, end): (usize, usize)) -> Location {
    Location::new(uri.clone(), doc.lines.range(&doc.text, start, end))
}

fn completion_kind(kind: Kind) -> CompletionItemKind {
    match kind {
        Kind::Input | Kind::Capture => CompletionItemKind::VARIABLE,
        Kind::Secret => CompletionItemKind::CONSTANT,
        Kind::Channel => CompletionItemKind::MODULE,
        Kind::Template => CompletionItemKind::SNIPPET,
        Kind::Check => CompletionItemKind::FUNCTION,
        Kind::Step => CompletionItemKind::EVENT,
    }
}

fn symbol_kind(kind: Kind) -> SymbolKind {
    match kind {
        Kind::Input | Kind::Capture => SymbolKind::VARIABLE,
        Kind::Secret => SymbolKind::CONSTANT,
        Kind::Channel => SymbolKind::MODULE,
        Kind::Template => SymbolKind::STRING,
        Kind::Check => SymbolKind::FUNCTION,
        Kind::Step => SymbolKind::EVENT,
    }
}

fn params<P: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<P, String> {
    serde_json::from_value(value).map_err(|e| format!("invalid parameters: {e}"))
}

fn json<T: serde::Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
