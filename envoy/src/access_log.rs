//! Envoy's access log, as `configs/static.yaml` writes it: one JSON object per line on stdout.
//!
//! The keys are those of the config's `json_format`; a test (`the_access_log_format_matches`)
//! keeps the two in step. Envoy writes numbers for `%RESPONSE_CODE%` and `%DURATION%`, `"-"` for
//! empty response flags, and `null` for a missing header or an unset upstream.

use serde::Deserialize;

/// One request as Envoy logged it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessLogEntry {
    pub start_time: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub response_code: u16,
    /// Envoy's response flags, for example `UF` (upstream connection failure), `UC` (upstream
    /// connection termination), `-` for none.
    pub response_flags: String,
    /// Why the response is what it is, for example `via_upstream`.
    pub response_code_details: Option<String>,
    pub route_name: Option<String>,
    pub upstream_cluster: Option<String>,
    pub upstream_host: Option<String>,
    pub duration_ms: Option<u64>,
    /// `x-breakwater-attempts` on the response.
    pub breakwater_attempts: Option<String>,
    /// `x-breakwater-breaker` on the response.
    pub breakwater_breaker: Option<String>,
}

/// The keys every entry carries; the config's `json_format` must define exactly these.
pub const KEYS: [&str; 12] = [
    "start_time",
    "method",
    "path",
    "response_code",
    "response_flags",
    "response_code_details",
    "route_name",
    "upstream_cluster",
    "upstream_host",
    "duration_ms",
    "breakwater_attempts",
    "breakwater_breaker",
];

/// Why a line of the access log could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access log line {line}: {reason}: {text}")]
pub struct AccessLogError {
    pub line: usize,
    pub reason: String,
    pub text: String,
}

/// Parses the access log text; a last line without its newline (still being written) is left out.
pub fn parse(text: &str) -> Result<Vec<AccessLogEntry>, AccessLogError> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|e| AccessLogError {
                line: index + 1,
                reason: e.to_string(),
                text: line.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_lines_parse() {
        let text = concat!(
            r#"{"start_time":"2026-01-01T00:00:00.000Z","method":"GET","path":"/b","response_code":503,"#,
            r#""response_flags":"UF","response_code_details":"upstream_reset_before_response_started{remote_connection_failure}","#,
            r#""route_name":"to-b","upstream_cluster":"b","upstream_host":"127.0.0.1:1","duration_ms":1,"#,
            r#""breakwater_attempts":null,"breakwater_breaker":null}"#,
            "\n"
        );
        let entries = parse(text).expect("Envoy's JSON lines parse");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].response_code, 503);
        assert_eq!(entries[0].response_flags, "UF");
        assert_eq!(entries[0].route_name.as_deref(), Some("to-b"));
    }

    #[test]
    fn a_partly_written_last_line_waits_for_its_newline() {
        let entries = parse("{\"start_time\":").expect("nothing complete yet");
        assert!(entries.is_empty());
    }

    #[test]
    fn a_broken_line_names_its_number() {
        let err = parse("{}\n").expect_err("missing keys");
        assert_eq!(err.line, 1);
    }
}
