//! A test run's report: a summary for people, JSON, and JUnit XML for CI servers (one test suite
//! per scenario, one test case per expectation, a `<failure>` with the reason and the values
//! seen).

use super::Report;
use std::fmt::Write as _;

/// The summary printed at the end of a run.
pub fn human(r: &Report) -> String {
    let mut o = String::new();
    let failed = r.outcomes.iter().filter(|x| !x.passed).count();
    let _ = writeln!(
        o,
        "{}: {} expectation(s), {} passed, {failed} failed ({:.1} s simulated, seed {}, speed x{})",
        r.file,
        r.outcomes.len(),
        r.outcomes.len() - failed,
        r.sim_s,
        r.seed,
        r.speed
    );
    for x in &r.outcomes {
        let _ = writeln!(
            o,
            "  {}  {} [{}] at {:.1} s: {}",
            if x.passed { "PASS" } else { "FAIL" },
            x.name,
            x.origin,
            x.at_s,
            x.detail
        );
    }
    o
}

pub fn json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "scenario": r.scenario,
        "file": r.file,
        "seed": r.seed,
        "speed": r.speed,
        "parameters": r.parameters.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "simulated_s": r.sim_s,
        "passed": r.passed(),
        "expectations": r.outcomes.iter().map(|x| serde_json::json!({
            "name": x.name,
            "origin": x.origin,
            "passed": x.passed,
            "at_s": x.at_s,
            "detail": x.detail,
        })).collect::<Vec<_>>(),
        "timeline": r.timeline.iter().map(|(t, what)| serde_json::json!({"t_s": t, "what": what})).collect::<Vec<_>>(),
    })
}

/// Text as XML character data or attribute value: the five entities escaped, and the
/// characters XML 1.0 does not allow dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn junit(r: &Report) -> String {
    let failures = r.outcomes.iter().filter(|x| !x.passed).count();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"busbar-sim\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        r.outcomes.len(),
        r.sim_s
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">",
        xml(&r.scenario),
        r.outcomes.len(),
        r.sim_s
    );
    let _ = writeln!(o, "    <properties>");
    let fixed = [
        ("file".to_string(), r.file.clone()),
        ("seed".to_string(), r.seed.to_string()),
        ("speed".to_string(), r.speed.to_string()),
    ];
    let params = r.parameters.iter().map(|(k, v)| (format!("parameter.{k}"), v.clone()));
    for (k, v) in fixed.into_iter().chain(params) {
        let _ = writeln!(o, "      <property name=\"{k}\" value=\"{}\"/>", xml(&v));
    }
    let _ = writeln!(o, "    </properties>");
    for x in &r.outcomes {
        let _ = write!(
            o,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml(&r.file),
            xml(&x.name),
            x.at_s
        );
        if x.passed {
            let _ = writeln!(o, "/>");
        } else {
            let _ = writeln!(
                o,
                ">\n      <failure message=\"{}\" type=\"expectation\">{} at {:.1} s: {}</failure>\n    </testcase>",
                xml(&x.detail),
                xml(&x.origin),
                x.at_s,
                xml(&x.detail)
            );
        }
    }
    let timeline: Vec<String> = r.timeline.iter().map(|(t, w)| format!("{t:9.2} s  {w}")).collect();
    let _ = writeln!(o, "    <system-out>{}</system-out>", xml(&timeline.join("\n")));
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qa::Outcome;

    fn report() -> Report {
        Report {
            scenario: "Station <Nord> & co".into(),
            file: "tests/scenarios/x.yaml".into(),
            seed: 7,
            speed: 1.0,
            parameters: vec![("sut".into(), "127.0.0.1:502".into())],
            sim_s: 45.0,
            outcomes: vec![
                Outcome {
                    name: "ats polled".into(),
                    origin: "x.yaml:20".into(),
                    passed: true,
                    at_s: 45.0,
                    detail: "44 polls".into(),
                },
                Outcome {
                    name: "value \"shown\"".into(),
                    origin: "x.yaml:24".into(),
                    passed: false,
                    at_s: 40.0,
                    detail: "not by 40.0 s: last seen 1 < 2\u{1}".into(),
                },
            ],
            timeline: vec![(30.0, "ats: event mains_lost".into())],
        }
    }

    #[test]
    fn junit_escapes_what_it_must_and_counts_failures() {
        let x = junit(&report());
        assert!(x.contains("<testsuite name=\"Station &lt;Nord&gt; &amp; co\" tests=\"2\" failures=\"1\""));
        assert!(x.contains("name=\"value &quot;shown&quot;\""));
        assert!(x.contains("last seen 1 &lt; 2</failure>"), "{x}");
        assert!(!x.contains('\u{1}'));
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert!(x.contains("ats: event mains_lost</system-out>"));
        assert!(
            x.contains("<property name=\"parameter.sut\" value=\"127.0.0.1:502\"/>"),
            "{x}"
        );
    }

    #[test]
    fn json_and_summary_say_what_failed() {
        let j = json(&report());
        assert_eq!(j["passed"], false);
        assert_eq!(j["expectations"][1]["passed"], false);
        assert_eq!(j["timeline"][0]["t_s"], 30.0);
        assert_eq!(j["parameters"]["sut"], "127.0.0.1:502");
        let h = human(&report());
        assert!(h.contains("2 expectation(s), 1 passed, 1 failed"));
        assert!(h.contains("FAIL  value \"shown\" [x.yaml:24] at 40.0 s"));
    }
}
