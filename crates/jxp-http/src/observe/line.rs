//! The access-log line written straight into a reused buffer, in the shape the `tracing`
//! formatter gives every other line of the log (pretty, with or without colour, or JSON), for a
//! process that hands its log's writer to [`write_access_lines_to`]. Building a `tracing` event
//! with six fields and having the formatter visit them was most of what the access log cost a
//! cached GET; here a line is a few copies, with numbers and the time written digit by digit.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{Method, StatusCode};

use super::{ACCESS_TARGET, Redacted};

/// How the lines are laid out: as `LOG_FORMAT` says, and coloured as the rest of the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    /// `tracing`'s default (full) text format; `ansi` adds its colours.
    Pretty { ansi: bool },
    /// `tracing`'s JSON format: `timestamp`, `level`, `fields`, `target`.
    Json,
}

/// Where the lines go: the process's log writer, given a whole line at a time.
type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

static WRITER: OnceLock<(AccessFormat, Sink)> = OnceLock::new();

/// Sends the access log's lines, formatted here as `format`, to `sink` instead of through
/// `tracing` (which still decides, by `RUST_LOG`, whether there are any). Once per process;
/// answers false if a writer was installed before. Without it each line is a `tracing` event,
/// for whatever subscriber the embedding program installed.
pub fn write_access_lines_to(
    format: AccessFormat,
    sink: impl Fn(&[u8]) + Send + Sync + 'static,
) -> bool {
    WRITER.set((format, Box::new(sink))).is_ok()
}

/// What one line says about a request.
pub(super) struct Access<'a> {
    pub method: &'a Method,
    /// The path, then `?` and the query if any.
    pub target: &'a str,
    pub status: StatusCode,
    pub bytes: Option<u64>,
    pub duration: Duration,
    /// When the request ended: the line's time is read from it rather than from the clock.
    pub ended: Instant,
    /// The user's id, as the UTF-8 bytes of the `&str` it was noted from.
    pub user: Option<&'a [u8]>,
}

/// A line being written, the last second's timestamp text (`2026-01-31T23:59:59`), reused
/// while the second lasts, and a reading of both clocks that dates each line from its
/// request's end without a second read of the clock.
#[derive(Default)]
struct Buffers {
    line: Vec<u8>,
    second: Option<(u64, [u8; 19])>,
    clock: Option<(Instant, SystemTime)>,
}

/// How long a reading of both clocks serves before it is taken again, so that the line's time
/// follows a change of the system clock within a second.
const CLOCK_REREAD: Duration = Duration::from_secs(1);

/// The system time at `at`, counted on from `clock`, itself read again when it has served
/// for [`CLOCK_REREAD`] (or lies after `at`).
fn wall_time(clock: &mut Option<(Instant, SystemTime)>, at: Instant) -> SystemTime {
    if let Some((instant, system)) = *clock
        && let Some(since) = at.checked_duration_since(instant)
        && since < CLOCK_REREAD
    {
        return system + since;
    }
    let (instant, system) = (Instant::now(), SystemTime::now());
    *clock = Some((instant, system));
    match instant.checked_duration_since(at) {
        Some(before) => system.checked_sub(before).unwrap_or(system),
        None => system,
    }
}

thread_local! {
    /// Kept per thread so a request allocates nothing once they have grown.
    static BUFFERS: RefCell<Buffers> = RefCell::default();
}

/// Writes the line through the installed writer; answers false, writing nothing, if none is.
pub(super) fn write(access: &Access<'_>) -> bool {
    let Some((format, sink)) = WRITER.get() else {
        return false;
    };
    BUFFERS.with(|buffers| {
        // A re-entrant borrow cannot happen (the sink does not log), but a log line is not
        // worth a panic: it would be formatted into fresh buffers.
        let mut fresh = Buffers::default();
        let mut borrowed = buffers.try_borrow_mut();
        let buffers = match borrowed.as_deref_mut() {
            Ok(buffers) => buffers,
            Err(_) => &mut fresh,
        };
        buffers.line.clear();
        let now = wall_time(&mut buffers.clock, access.ended);
        format_line(buffers, *format, now, access);
        sink(&buffers.line);
    });
    true
}

/// The whole line, newline included, in `buffers.line`. Numbers and the time are written with
/// `itoa` and two digits at a time rather than through `fmt`, which cost more than the rest of
/// the line; the status is its code's text.
fn format_line(buffers: &mut Buffers, format: AccessFormat, now: SystemTime, a: &Access<'_>) {
    let Buffers {
        line: buf, second, ..
    } = buffers;
    match format {
        AccessFormat::Json => {
            buf.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(buf, second, now);
            buf.extend_from_slice(b"\",\"level\":\"INFO\",\"fields\":{\"method\":");
            json_str(buf, a.method.as_str().as_bytes());
            buf.extend_from_slice(b",\"path\":\"");
            Redacted(a.target).pieces(|piece| json_escape(buf, piece.as_bytes()));
            buf.push(b'"');
            buf.extend_from_slice(b",\"status\":");
            buf.extend_from_slice(a.status.as_str().as_bytes());
            if let Some(bytes) = a.bytes {
                buf.extend_from_slice(b",\"bytes\":");
                push_u64(buf, bytes);
            }
            buf.extend_from_slice(b",\"duration_ms\":");
            push_ms(buf, a.duration);
            if let Some(user) = a.user {
                buf.extend_from_slice(b",\"user\":");
                json_str(buf, user);
            }
            buf.extend_from_slice(b"},\"target\":\"");
            buf.extend_from_slice(ACCESS_TARGET.as_bytes());
            buf.extend_from_slice(b"\"}\n");
        }
        AccessFormat::Pretty { ansi: false } => {
            timestamp(buf, second, now);
            buf.extend_from_slice(b"  INFO ");
            buf.extend_from_slice(ACCESS_TARGET.as_bytes());
            buf.extend_from_slice(b": ");
            // Each field's name, with the space before it and the `=` after it, in one copy.
            pretty_fields(buf, a, |buf, plain| buf.extend_from_slice(plain));
        }
        AccessFormat::Pretty { ansi: true } => {
            // The codes `tracing`'s formatter uses: dimmed time, target and `=`, a green
            // level, italic field names.
            const DIM: &[u8] = b"\x1b[2m";
            const ITALIC: &[u8] = b"\x1b[3m";
            const RESET: &[u8] = b"\x1b[0m";
            buf.extend_from_slice(DIM);
            timestamp(buf, second, now);
            for part in [RESET, b" ", b"\x1b[32m", b" INFO", RESET, b" "] {
                buf.extend_from_slice(part);
            }
            for part in [DIM, ACCESS_TARGET.as_bytes(), RESET, DIM, b":", RESET, b" "] {
                buf.extend_from_slice(part);
            }
            pretty_fields(buf, a, |buf, plain| {
                let (space, name) = match plain.strip_prefix(b" ") {
                    Some(name) => (true, name),
                    None => (false, plain),
                };
                if space {
                    buf.push(b' ');
                }
                let name = name.strip_suffix(b"=").unwrap_or(name);
                for part in [ITALIC, name, RESET, DIM, b"=", RESET] {
                    buf.extend_from_slice(part);
                }
            });
        }
    }
}

/// The fields of a text line, after its target; `name` writes a field's name from its plain
/// form (`" path="`: the space before it, none for the first, and the `=`).
fn pretty_fields(buf: &mut Vec<u8>, a: &Access<'_>, name: impl Fn(&mut Vec<u8>, &[u8])) {
    name(buf, b"method=");
    buf.extend_from_slice(a.method.as_str().as_bytes());
    name(buf, b" path=");
    Redacted(a.target).pieces(|piece| buf.extend_from_slice(piece.as_bytes()));
    name(buf, b" status=");
    buf.extend_from_slice(a.status.as_str().as_bytes());
    if let Some(bytes) = a.bytes {
        name(buf, b" bytes=");
        push_u64(buf, bytes);
    }
    name(buf, b" duration_ms=");
    push_ms(buf, a.duration);
    if let Some(user) = a.user {
        name(buf, b" user=");
        debug_str(buf, user);
    }
    buf.push(b'\n');
}

/// `s` (UTF-8) as a JSON string literal.
fn json_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    json_escape(buf, s);
    buf.push(b'"');
}

/// `s` (UTF-8) inside a JSON string, escaped as `serde_json` escapes it: `\"`, `\\`, the
/// short forms of the usual control characters and `\u00xx` for the rest. The runs between
/// escapes are copied whole.
fn json_escape(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Most strings (a path, a user id, a method) need no escape at all: checked whole and
    // copied in one piece.
    if !any_byte(bytes, must_escape) {
        buf.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !must_escape(b) {
            continue;
        }
        buf.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
                continue;
            }
        };
        buf.extend_from_slice(short);
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Whether `test` holds for any byte of `bytes` (it must not hold for a space). Checked 16 bytes
/// at a time without an early exit, the last bytes padded with spaces to a whole 16, which
/// compiles to a few vector instructions a chunk where a loop over a short string's bytes
/// would take several instructions a byte.
fn any_byte(bytes: &[u8], test: impl Fn(u8) -> bool + Copy) -> bool {
    let mut chunks = bytes.chunks_exact(16);
    let mut any = false;
    for chunk in &mut chunks {
        any |= chunk.iter().fold(false, |any, &b| any | test(b));
    }
    let rest = chunks.remainder();
    let mut last = [b' '; 16];
    if let Some(head) = last.get_mut(..rest.len()) {
        head.copy_from_slice(rest);
    }
    any | last.iter().fold(false, |any, &b| any | test(b))
}

/// Whether JSON needs `b` escaped inside a string: a quote, a backslash or a control byte.
fn must_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` (UTF-8) quoted as `{:?}` writes it (as the text format shows a string field): as it is
/// when nothing in it needs an escape, which holds for user ids.
fn debug_str(buf: &mut Vec<u8>, s: &[u8]) {
    if !any_byte(s, |b| {
        !(b' '..=b'~').contains(&b) | (b == b'"') | (b == b'\\')
    }) {
        buf.push(b'"');
        buf.extend_from_slice(s);
        buf.push(b'"');
    } else {
        let _ = write!(buf, "{:?}", String::from_utf8_lossy(s));
    }
}

/// A number's decimal digits.
fn push_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `n` as exactly `width` digits, zeros in front (`n` has no more digits than that).
fn push_padded(buf: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let width = width.min(digits.len());
    for at in (0..width).rev() {
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&digits[..width]);
}

/// A duration in milliseconds to the nanosecond, as a JSON and Rust float reads:
/// `0.276206`, `12.5`, `3.0`.
fn push_ms(buf: &mut Vec<u8>, duration: Duration) {
    let nanos = duration.as_nanos();
    let whole = u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX);
    // Below a million: fits.
    let fraction = u32::try_from(nanos % 1_000_000).unwrap_or(0);
    push_u64(buf, whole);
    buf.push(b'.');
    if fraction == 0 {
        buf.push(b'0');
        return;
    }
    let digits = six_digits(fraction);
    let zeros = digits.iter().rev().take_while(|&&d| d == b'0').count();
    buf.extend_from_slice(&digits[..digits.len() - zeros]);
}

/// "00" to "99", two bytes each.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// The last six decimal digits of `n`, zeros in front, written two at a time.
fn six_digits(n: u32) -> [u8; 6] {
    let n = n % 1_000_000;
    let mut out = [b'0'; 6];
    for (i, pair) in [n / 10_000, n / 100 % 100, n % 100].into_iter().enumerate() {
        // Each is below 100.
        let at = pair as usize * 2;
        out[2 * i] = PAIRS[at];
        out[2 * i + 1] = PAIRS[at + 1];
    }
    out
}

/// `now` in UTC as `tracing`'s formatter writes it: RFC 3339 with microseconds,
/// `2026-01-31T23:59:59.123456Z`. The text up to the second is kept in `second` for the
/// next line.
fn timestamp(buf: &mut Vec<u8>, second: &mut Option<(u64, [u8; 19])>, now: SystemTime) {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let text = match second {
        Some((at, text)) if *at == secs => *text,
        _ => {
            let text = second_text(secs);
            *second = Some((secs, text));
            text
        }
    };
    buf.extend_from_slice(&text);
    buf.push(b'.');
    buf.extend_from_slice(&six_digits(since.subsec_micros()));
    buf.push(b'Z');
}

/// `2026-01-31T23:59:59` for a count of seconds since 1970 (years past 9999 do not occur).
fn second_text(secs: u64) -> [u8; 19] {
    let (year, month, day) = civil_date(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = Vec::with_capacity(19);
    push_padded(&mut text, year, 4);
    for (sep, n) in [
        (b'-', month),
        (b'-', day),
        (b'T', of_day / 3600),
        (b':', of_day % 3600 / 60),
        (b':', of_day % 60),
    ] {
        text.push(sep);
        push_padded(&mut text, n, 2);
    }
    let mut out = [b'0'; 19];
    for (o, t) in out.iter_mut().zip(&text) {
        *o = *t;
    }
    out
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01, by
/// counting 400-year eras that start on 1 March (so the leap day ends a year).
fn civil_date(days: u64) -> (u64, u64, u64) {
    // 719 468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    fn stamp(t: SystemTime) -> String {
        let mut s = Vec::new();
        timestamp(&mut s, &mut None, t);
        String::from_utf8(s).unwrap()
    }

    #[test]
    fn timestamps_read_as_rfc_3339_in_utc() {
        assert_eq!(stamp(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(stamp(at(951_782_400, 5)), "2000-02-29T00:00:00.000005Z");
        assert_eq!(
            stamp(at(951_868_799, 999_999)),
            "2000-02-29T23:59:59.999999Z"
        );
        assert_eq!(stamp(at(1_798_761_599, 0)), "2026-12-31T23:59:59.000000Z");
        assert_eq!(stamp(at(4_107_542_400, 0)), "2100-03-01T00:00:00.000000Z");
    }

    #[test]
    fn text_fields_are_quoted_as_debug_quotes_them() {
        for s in [
            "6b144a332a8d0c932c2e3791",
            "a b",
            "",
            "q\"uote",
            "back\\",
            "tab\t",
            "caf\u{e9}",
            "~",
        ] {
            let mut ours = Vec::new();
            debug_str(&mut ours, s.as_bytes());
            assert_eq!(String::from_utf8(ours).unwrap(), format!("{s:?}"));
        }
    }

    #[test]
    fn any_byte_finds_a_byte_in_whole_chunks_and_in_the_rest() {
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert!(!any_byte(&plain, must_escape), "{len}");
            for at in 0..len {
                let mut odd = plain.clone();
                odd[at] = b'"';
                assert!(any_byte(&odd, must_escape), "{len} {at}");
            }
        }
    }

    #[test]
    fn six_digits_are_the_last_six_with_zeros_in_front() {
        for (n, text) in [
            (0, "000000"),
            (7, "000007"),
            (4_200, "004200"),
            (123_456, "123456"),
            (999_999, "999999"),
            (1_234_567, "234567"),
        ] {
            assert_eq!(six_digits(n), text.as_bytes());
        }
    }

    #[test]
    fn durations_read_as_milliseconds_to_the_nanosecond() {
        let ms = |d: Duration| {
            let mut s = Vec::new();
            push_ms(&mut s, d);
            String::from_utf8(s).unwrap()
        };
        assert_eq!(ms(Duration::from_nanos(276_206)), "0.276206");
        assert_eq!(ms(Duration::from_nanos(12_500_000)), "12.5");
        assert_eq!(ms(Duration::from_millis(3)), "3.0");
        assert_eq!(ms(Duration::from_nanos(1)), "0.000001");
        assert_eq!(ms(Duration::from_nanos(1_000_100)), "1.0001");
        assert_eq!(ms(Duration::from_nanos(999_999_999)), "999.999999");
        assert_eq!(ms(Duration::ZERO), "0.0");
        assert_eq!(ms(Duration::from_secs(86_400)), "86400000.0");
    }

    #[test]
    fn the_kept_second_is_replaced_when_the_second_changes() {
        let mut second = None;
        let mut s = Vec::new();
        timestamp(&mut s, &mut second, at(1_798_761_599, 1));
        s.push(b' ');
        timestamp(&mut s, &mut second, at(1_798_761_600, 2));
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "2026-12-31T23:59:59.000001Z 2027-01-01T00:00:00.000002Z"
        );
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "/api/plain",
            "",
            "q\"uote\\back",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "caf\u{e9} \u{1f600} \"end",
            "/api/a-path-of-more-than-sixteen-bytes/0123456789abcdef01234567",
            "sixteen plain by\"then a quote, then 0123456789abcdef\n0123456789abcdef",
            "0123456789abcde\\0123456789abcdef\u{1}",
        ] {
            let mut ours = Vec::new();
            json_str(&mut ours, s.as_bytes());
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn the_lines_time_counts_on_from_one_reading_of_the_clock() {
        let mut clock = None;
        let start = Instant::now();
        let first = wall_time(&mut clock, start);
        let (instant, system) = clock.unwrap();
        let later = instant + Duration::from_millis(300);
        assert_eq!(
            wall_time(&mut clock, later),
            system + Duration::from_millis(300)
        );
        assert_eq!(clock, Some((instant, system)));
        assert!(first <= system);
        // Past the reread interval the clock is read afresh.
        let much_later = instant + CLOCK_REREAD + Duration::from_millis(1);
        let _ = wall_time(&mut clock, much_later);
        assert_ne!(clock, Some((instant, system)));
    }

    fn line(format: AccessFormat, user: Option<&str>, bytes: Option<u64>) -> String {
        let access = Access {
            method: &Method::GET,
            target: "/api/logged?apikey=K&limit=5&q=%22a%5C%22",
            status: StatusCode::FORBIDDEN,
            bytes,
            duration: Duration::from_micros(250),
            ended: Instant::now(),
            user: user.map(str::as_bytes),
        };
        let mut buffers = Buffers::default();
        format_line(&mut buffers, format, at(1_798_761_599, 42), &access);
        String::from_utf8(buffers.line).unwrap()
    }

    #[test]
    fn a_json_line_has_the_shape_of_tracings_json_format() {
        let text = line(AccessFormat::Json, Some("u\"1"), Some(17));
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "timestamp": "2026-12-31T23:59:59.000042Z",
                "level": "INFO",
                "fields": {
                    "method": "GET",
                    "path": "/api/logged?apikey=[redacted]&limit=5&q=%22a%5C%22",
                    "status": 403,
                    "bytes": 17,
                    "duration_ms": 0.25,
                    "user": "u\"1",
                },
                "target": "jxp::access",
            })
        );
        let anonymous: serde_json::Value =
            serde_json::from_str(&line(AccessFormat::Json, None, None)).unwrap();
        assert!(anonymous["fields"].get("user").is_none());
        assert!(anonymous["fields"].get("bytes").is_none());
    }

    #[test]
    fn a_pretty_line_reads_as_tracings_full_format() {
        assert_eq!(
            line(AccessFormat::Pretty { ansi: false }, Some("abc"), Some(17)),
            "2026-12-31T23:59:59.000042Z  INFO jxp::access: method=GET \
             path=/api/logged?apikey=[redacted]&limit=5&q=%22a%5C%22 status=403 bytes=17 \
             duration_ms=0.25 user=\"abc\"\n"
        );
        assert_eq!(
            line(AccessFormat::Pretty { ansi: false }, None, None),
            "2026-12-31T23:59:59.000042Z  INFO jxp::access: method=GET \
             path=/api/logged?apikey=[redacted]&limit=5&q=%22a%5C%22 status=403 \
             duration_ms=0.25\n"
        );
        let coloured = line(AccessFormat::Pretty { ansi: true }, Some("abc"), Some(17));
        let field = |name: &str| format!("\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m");
        assert_eq!(
            coloured,
            format!(
                "\x1b[2m2026-12-31T23:59:59.000042Z\x1b[0m \x1b[32m INFO\x1b[0m \
                 \x1b[2mjxp::access\x1b[0m\x1b[2m:\x1b[0m {}GET {}/api/logged?apikey=[redacted]\
                 &limit=5&q=%22a%5C%22 {}403 {}17 {}0.25 {}\"abc\"\n",
                field("method"),
                field("path"),
                field("status"),
                field("bytes"),
                field("duration_ms"),
                field("user"),
            )
        );
        let coloured = line(AccessFormat::Pretty { ansi: true }, None, None);
        assert!(coloured.starts_with("\x1b[2m2026-12-31T23:59:59.000042Z\x1b[0m \x1b[32m INFO"));
        assert!(coloured.contains("\x1b[3mstatus\x1b[0m\x1b[2m=\x1b[0m403"));
    }
}
