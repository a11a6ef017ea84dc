//! Headless Chromium as a person's browser: Debian's `chromium` (`make test` installs it), with
//! every host name unresolvable but loopback, so a page that fetched anything from the network
//! would show it as a console error. Each call is one browser process, killed by PID if it
//! outlives its bound.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the browser rendered: the DOM after layout, and what it logged (console messages
/// included).
pub struct Rendered {
    pub dom: String,
    pub log: String,
}

impl Rendered {
    /// Console messages at error level, and failed loads (the page fetched something).
    pub fn console_errors(&self) -> Vec<&str> {
        (self.log.lines())
            .filter(|l| {
                l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("Uncaught"))
                    || l.contains("net::ERR_")
            })
            .collect()
    }
}

fn chromium() -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    cmd
}

/// Runs `cmd` to completion within `limit`; its stdout and stderr.
fn run_bounded(mut cmd: Command, limit: Duration) -> (String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("chromium: run `make test`, which installs Debian's chromium");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    (read(&out), read(&err))
}

/// The rendered DOM of `url` and the browser's log.
pub fn render(url: &str) -> Rendered {
    let mut cmd = chromium();
    cmd.args(["--virtual-time-budget=3000", "--dump-dom", url]);
    let (dom, log) = run_bounded(cmd, Duration::from_secs(60));
    Rendered { dom, log }
}

/// A screenshot of `url`, `width` × `height` pixels, to `png`, checked to hold a picture.
pub fn screenshot(url: &str, png: &Path, width: u32, height: u32) {
    screenshot_unchecked(url, png, width, height);
    let size = std::fs::metadata(png).map_or(0, |m| m.len());
    assert!(size > 10_000, "a screenshot of {url} ({size} bytes)");
}

/// A screenshot of `url` to `png`, as it comes (a blank page's is small).
pub fn screenshot_unchecked(url: &str, png: &Path, width: u32, height: u32) {
    let mut cmd = chromium();
    cmd.arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg("--hide-scrollbars")
        .arg(url);
    run_bounded(cmd, Duration::from_secs(60));
}

/// The text of every cell of the rows of the first `<table class="{class}">` after `from` in
/// `html`, as the browser serialised it (tags removed, entities of `&amp;`, `&lt;`, `&gt;` read).
pub fn table_rows(html: &str, from: usize, class: &str) -> Vec<Vec<String>> {
    let start = from
        + html[from..]
            .find(&format!("<table class=\"{class}\""))
            .expect("table");
    let end = start + html[start..].find("</table>").expect("table end");
    let body = &html[start..end];
    let body = &body[body.find("<tbody>").map_or(0, |i| i + 7)..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| text_of(&cell[cell.find('>').map_or(0, |i| i + 1)..]))
                .collect()
        })
        .collect()
}

/// Text with tags removed.
pub fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}
