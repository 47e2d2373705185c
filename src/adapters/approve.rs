//! The real approve adapter: a y/N prompt on the terminal.
//!
//! * Pre-approved (`--approve STEP`): approved at once, by `--approve`.
//! * Stdin and stderr both terminals: the message and the step are printed
//!   on stderr, and one line is read from stdin. `y`/`yes` (any case)
//!   approves; anything else, an empty line included, refuses (an
//!   `Ok` with `approved: false`). The wait races the timeout
//!   (`Err(Timeout)`) and `Call::cancel` (`Err(Cancelled)`).
//! * No terminal: `Err(Refused)` naming `--approve STEP`.
//!
//! Stdin is read by one detached thread, started at the first prompt and
//! feeding a channel: a blocking read cannot be interrupted, and a detached
//! thread (unlike `spawn_blocking`) never keeps the process from exiting
//! after a timed-out prompt. A line typed while no prompt was shown is
//! discarded before the next prompt, so it never answers a question that
//! was not yet asked.

use super::*;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

/// Where the prompt is written.
pub type PromptWriter = Arc<Mutex<dyn Write + Send>>;

type ScriptInput = Arc<tokio::sync::Mutex<Box<dyn AsyncBufRead + Send + Unpin>>>;

#[derive(Clone)]
enum Prompter {
    /// The process' stdin/stderr, if both are terminals (checked per ask).
    Terminal,
    /// Never a terminal: every approval that is not pre-approved is refused.
    NoTerminal,
    /// A scripted terminal (tests, tools).
    Script {
        input: ScriptInput,
        output: PromptWriter,
    },
}

/// Asks humans for real.
#[derive(Clone)]
pub struct RealApprove {
    prompter: Prompter,
}

impl std::fmt::Debug for RealApprove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.prompter {
            Prompter::Terminal => "terminal",
            Prompter::NoTerminal => "no terminal",
            Prompter::Script { .. } => "scripted",
        };
        f.debug_struct("RealApprove").field("mode", &mode).finish()
    }
}

impl Default for RealApprove {
    fn default() -> Self {
        RealApprove::new()
    }
}

impl RealApprove {
    /// Prompts on the terminal when stdin and stderr are both terminals.
    pub fn new() -> Self {
        RealApprove {
            prompter: Prompter::Terminal,
        }
    }

    /// Behaves as if there were no terminal.
    pub fn without_terminal() -> Self {
        RealApprove {
            prompter: Prompter::NoTerminal,
        }
    }

    /// Prompts on `output` and reads answers from `input`, as a terminal.
    pub fn scripted(
        input: impl AsyncBufRead + Send + Unpin + 'static,
        output: PromptWriter,
    ) -> Self {
        RealApprove {
            prompter: Prompter::Script {
                input: Arc::new(tokio::sync::Mutex::new(Box::new(input))),
                output,
            },
        }
    }
}

/// Lines of the process' stdin, read by a detached thread. `None` in the
/// channel: end of input (or a read error).
struct StdinLines {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Option<String>>>,
    closed: std::sync::atomic::AtomicBool,
}

fn stdin_lines() -> AdapterResult<&'static StdinLines> {
    static LINES: OnceLock<Result<StdinLines, String>> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            std::thread::Builder::new()
                .name("runbook-stdin".into())
                .spawn(move || {
                    let stdin = std::io::stdin();
                    let mut lock = stdin.lock();
                    loop {
                        let mut line = String::new();
                        match lock.read_line(&mut line) {
                            Ok(0) | Err(_) => {
                                let _ = tx.send(None);
                                return;
                            }
                            Ok(_) => {
                                if tx.send(Some(line)).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                })
                .map(|_| StdinLines {
                    rx: tokio::sync::Mutex::new(rx),
                    closed: std::sync::atomic::AtomicBool::new(false),
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            AdapterError::new(
                ErrorKind::Other,
                format!("cannot read the terminal (thread): {e}"),
            )
        })
}

impl StdinLines {
    /// Discards lines typed before the prompt.
    async fn discard_pending(&self) {
        let mut rx = self.rx.lock().await;
        while let Ok(line) = rx.try_recv() {
            if line.is_none() {
                self.closed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    async fn next_line(&self) -> Option<String> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let line = self.rx.lock().await.recv().await.flatten();
        if line.is_none() {
            self.closed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        line
    }
}

/// Who answers on this terminal.
fn terminal_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "terminal".into())
}

fn step_of(call: &Call) -> String {
    match &call.item {
        Some(item) => format!("`{}` (item {item})", call.node),
        None => format!("`{}`", call.node),
    }
}

/// The prompt text.
pub fn prompt_text(call: &Call, req: &ApprovalRequest) -> String {
    let deadline = match req.timeout {
        Some(t) => format!(" (refused after {})", humantime::format_duration(t)),
        None => String::new(),
    };
    let phase = match call.phase {
        Phase::Undo => " (rollback)",
        _ => "",
    };
    format!(
        "\nApproval needed for step {}{phase}:\n    {}\nApprove? [y/N]{deadline} ",
        step_of(call),
        req.message.replace('\n', "\n    ")
    )
}

/// Reads the answer as a decision.
pub fn decide(line: &str, by: String) -> ApprovalDecision {
    let answer = line.trim();
    let approved = matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes");
    let reason = if approved {
        None
    } else if answer.is_empty() {
        Some("refused (no answer given; the default is no)".into())
    } else {
        Some(format!("refused (answered {answer:?})"))
    };
    ApprovalDecision {
        approved,
        by,
        reason,
    }
}

fn write_out(out: &PromptWriter, text: &str) -> AdapterResult<()> {
    let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| {
            AdapterError::new(
                ErrorKind::Other,
                format!("cannot write the approval prompt: {e}"),
            )
        })
}

impl RealApprove {
    async fn prompt(
        &self,
        call: &Call,
        req: &ApprovalRequest,
        output: &PromptWriter,
        read: impl std::future::Future<Output = Option<String>>,
        by: String,
    ) -> AdapterResult<ApprovalDecision> {
        write_out(output, &prompt_text(call, req))?;
        let sleep = async {
            match req.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = read => match line {
                Some(line) => Ok(decide(&line, by)),
                None => {
                    let _ = write_out(output, "\n");
                    Err(AdapterError::new(
                        ErrorKind::Refused,
                        format!(
                            "step {} needs approval but the terminal closed before an answer; \
                             pre-approve it with `--approve {}`",
                            step_of(call),
                            call.node
                        ),
                    ))
                }
            },
            _ = sleep => {
                let _ = write_out(output, "\n(no answer: refused)\n");
                Err(AdapterError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer to the approval of step {} within {}",
                        step_of(call),
                        humantime::format_duration(req.timeout.unwrap_or_default())
                    ),
                ))
            }
            _ = call.cancel.cancelled() => {
                let _ = write_out(output, "\n(cancelled)\n");
                Err(AdapterError::cancelled())
            }
        }
    }
}

fn no_terminal(call: &Call, req: &ApprovalRequest) -> AdapterError {
    AdapterError::new(
        ErrorKind::Refused,
        format!(
            "step {} needs approval ({:?}) but there is no terminal to ask on \
             (stdin and stderr must both be terminals): pre-approve it with `--approve {}`",
            step_of(call),
            req.message,
            call.node
        ),
    )
}

#[async_trait]
impl ApproveAdapter for RealApprove {
    async fn ask(&self, call: &Call, req: &ApprovalRequest) -> AdapterResult<ApprovalDecision> {
        if req.preapproved {
            return Ok(ApprovalDecision {
                approved: true,
                by: "--approve".into(),
                reason: Some(format!("pre-approved with `--approve {}`", call.node)),
            });
        }
        if call.cancel.is_cancelled() {
            return Err(AdapterError::cancelled());
        }
        match &self.prompter {
            Prompter::NoTerminal => Err(no_terminal(call, req)),
            Prompter::Terminal => {
                if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
                    return Err(no_terminal(call, req));
                }
                let lines = stdin_lines()?;
                // Type-ahead (keys pressed before the question) answers
                // nothing: drop what the terminal and the reader hold.
                // SAFETY: tcflush on fd 0, a terminal (checked above).
                unsafe { libc::tcflush(libc::STDIN_FILENO, libc::TCIFLUSH) };
                lines.discard_pending().await;
                let output: PromptWriter = Arc::new(Mutex::new(std::io::stderr()));
                self.prompt(call, req, &output, lines.next_line(), terminal_user())
                    .await
            }
            Prompter::Script { input, output } => {
                let read = async {
                    let mut input = input.lock().await;
                    let mut line = String::new();
                    match input.read_line(&mut line).await {
                        Ok(0) | Err(_) => None,
                        Ok(_) => Some(line),
                    }
                };
                self.prompt(call, req, output, read, terminal_user()).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(timeout: Option<Duration>, preapproved: bool) -> ApprovalRequest {
        ApprovalRequest {
            message: "Drain eu-west?".into(),
            timeout,
            preapproved,
            by_other: false,
            attempts: None,
        }
    }

    fn out() -> (PromptWriter, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (buf.clone(), buf)
    }

    fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    #[tokio::test]
    async fn preapproved_needs_no_terminal() {
        let a = RealApprove::without_terminal();
        let d = a
            .ask(&Call::simple("drain"), &req(None, true))
            .await
            .expect("approved");
        assert!(d.approved);
        assert_eq!(d.by, "--approve");
    }

    #[tokio::test]
    async fn no_terminal_is_refused_naming_the_flag() {
        let a = RealApprove::without_terminal();
        let e = a
            .ask(&Call::simple("drain"), &req(None, false))
            .await
            .expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Refused);
        assert!(e.message.contains("--approve drain"), "{}", e.message);
    }

    #[tokio::test]
    async fn yes_and_no_answers() {
        for (answer, approved) in [
            ("y\n", true),
            ("YES\n", true),
            ("n\n", false),
            ("\n", false),
        ] {
            let (w, buf) = out();
            let a = RealApprove::scripted(answer.as_bytes(), w);
            let d = a
                .ask(&Call::simple("drain"), &req(None, false))
                .await
                .expect("answered");
            assert_eq!(d.approved, approved, "{answer:?}");
            let shown = text(&buf);
            assert!(shown.contains("step `drain`"), "{shown}");
            assert!(shown.contains("Drain eu-west?"), "{shown}");
            assert!(shown.contains("[y/N]"), "{shown}");
        }
    }

    #[tokio::test]
    async fn closed_input_is_refused() {
        let (w, _) = out();
        let a = RealApprove::scripted(&b""[..], w);
        let e = a
            .ask(&Call::simple("drain"), &req(None, false))
            .await
            .expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Refused);
    }

    #[tokio::test]
    async fn timeout_and_cancel() {
        let (reader, _keep_open) = tokio::io::duplex(64);
        let (w, buf) = out();
        let a = RealApprove::scripted(tokio::io::BufReader::new(reader), w);
        let e = a
            .ask(
                &Call::simple("drain"),
                &req(Some(Duration::from_millis(100)), false),
            )
            .await
            .expect_err("timed out");
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(text(&buf).contains("refused after 100ms"), "{}", text(&buf));

        let call = Call::simple("drain");
        let cancel = call.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        let e = a
            .ask(&call, &req(None, false))
            .await
            .expect_err("cancelled");
        assert_eq!(e.kind, ErrorKind::Cancelled);
    }
}
