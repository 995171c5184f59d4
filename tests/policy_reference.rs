//! Every example in `policies/README.md` is checked, so the reference cannot
//! rot: each policy loads with exactly the warnings its marker names, each
//! block of cases passes against its policy, each error listing is what
//! `check` reports, and every key, selector, operator, caller type, mode,
//! identity source and warning code appears in an example.
//!
//! Markers (HTML comments, invisible when rendered) precede the blocks:
//! `<!-- example: NAME -->` or `<!-- example: NAME warns: code, code -->`
//! before a ```yaml policy; `<!-- cases: NAME -->` before a ```yaml policy
//! test file run against example NAME; `<!-- invalid: NAME -->` before a
//! ```yaml policy and the ```text block of its diagnostics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wix_elevator::authoring::evaluate::Settings;
use wix_elevator::authoring::policy_tests::run;
use wix_elevator::policy::{Lint, PolicySet};

#[derive(Debug)]
enum Block {
    Example { warns: Vec<String>, policy: String },
    Cases(String),
    Invalid { policy: String, expected: String },
}

/// The text of the next fenced block with `lang` after line `from`.
fn fenced(lines: &[&str], from: usize, lang: &str) -> (String, usize) {
    let open = format!("```{lang}");
    let start = (from..lines.len())
        .find(|&i| lines[i].trim() == open)
        .unwrap_or_else(|| panic!("no ```{lang} block after line {from}"));
    let end = (start + 1..lines.len())
        .find(|&i| lines[i].trim() == "```")
        .expect("the block is closed");
    (lines[start + 1..end].join("\n") + "\n", end + 1)
}

fn blocks() -> Vec<(String, Block)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/README.md"))
            .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- ")
            .and_then(|m| m.strip_suffix(" -->"))
        else {
            continue;
        };
        let (kind, rest) = marker.split_once(": ").expect("marker shape");
        let (name, warns) = match rest.split_once(" warns: ") {
            Some((name, codes)) => (name, codes.split(", ").map(str::to_owned).collect()),
            None => (rest, Vec::new()),
        };
        let block = match kind {
            "example" => Block::Example {
                warns,
                policy: fenced(&lines, i + 1, "yaml").0,
            },
            "cases" => Block::Cases(fenced(&lines, i + 1, "yaml").0),
            "invalid" => {
                let (policy, next) = fenced(&lines, i + 1, "yaml");
                Block::Invalid {
                    policy,
                    expected: fenced(&lines, next, "text").0,
                }
            }
            other => panic!("unknown marker `{other}`"),
        };
        out.push((name.to_owned(), block));
    }
    out
}

fn compile(name: &str, policy: &str) -> Result<PolicySet, Vec<String>> {
    PolicySet::from_sources(&[(PathBuf::from(format!("{name}.yaml")), policy.to_owned())])
        .map_err(|d| d.iter().map(ToString::to_string).collect())
}

#[test]
fn every_example_loads_and_warns_as_documented() {
    let blocks = blocks();
    let examples: Vec<_> = blocks
        .iter()
        .filter_map(|(name, b)| match b {
            Block::Example { warns, policy } => Some((name, warns, policy)),
            _ => None,
        })
        .collect();
    assert!(examples.len() >= 15, "{}", examples.len());
    for (name, warns, policy) in examples {
        let set = compile(name, policy).unwrap_or_else(|e| panic!("example {name}: {e:#?}"));
        let codes: Vec<&str> = set
            .warnings()
            .iter()
            .map(|d| d.code.unwrap_or("-"))
            .collect();
        assert_eq!(codes, *warns, "example {name}: {:#?}", set.warnings());
    }
}

#[test]
fn every_block_of_cases_passes_against_its_example() {
    let blocks = blocks();
    let mut sets = BTreeMap::new();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for (name, block) in &blocks {
        match block {
            Block::Example { policy, .. } => {
                sets.insert(name.clone(), compile(name, policy).unwrap());
            }
            Block::Cases(cases) => {
                let set = sets.get(name).unwrap_or_else(|| {
                    panic!("cases for `{name}` come before or without its example")
                });
                let file = dir.path().join(format!("{name}.yaml"));
                std::fs::write(&file, cases).unwrap();
                let report = run(set, &[file], &Settings::default());
                assert!(
                    report.failed() == 0 && !report.results.is_empty(),
                    "cases of {name}:\n{}",
                    report.render(true)
                );
                ran += report.results.len();
            }
            Block::Invalid { .. } => {}
        }
    }
    assert!(ran >= 30, "{ran} cases");
    // Every example that is not about a warning shows its behaviour in cases.
    for (name, block) in &blocks {
        if let Block::Example { warns, .. } = block {
            let has_cases = blocks
                .iter()
                .any(|(n, b)| n == name && matches!(b, Block::Cases(_)));
            assert!(
                has_cases || !warns.is_empty(),
                "example {name} has no cases"
            );
        }
    }
}

#[test]
fn every_error_listing_is_what_check_reports() {
    let mut seen = 0;
    for (name, block) in blocks() {
        if let Block::Invalid { policy, expected } = block {
            let errors = compile(&name, &policy).expect_err("an invalid example fails");
            assert_eq!(errors.join("\n") + "\n", expected, "invalid example {name}");
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

#[test]
fn the_reference_shows_everything_with_an_example() {
    let blocks = blocks();
    let examples: String = blocks
        .iter()
        .filter_map(|(_, b)| match b {
            Block::Example { policy, .. } => Some(policy.as_str()),
            _ => None,
        })
        .collect();
    let needles = [
        // keys
        "id:",
        "description:",
        "match:",
        "methods:",
        "path:",
        "callers:",
        "mode:",
        "identity:",
        "when:",
        "allow_warnings:",
        // template segments
        "{memberId}",
        "public-*",
        "/**\"",
        // selectors
        "path.",
        "query.",
        "header.",
        "body.",
        "caller.subjectId",
        "caller.subjectType",
        "caller.instanceId",
        "caller.siteId",
        // operators and groups
        "equals:",
        "one_of:",
        "prefix:",
        "regex:",
        "exists:",
        "absent:",
        "min:",
        "max:",
        "all:",
        "any:",
        "not:",
        // caller types, modes, identity sources
        "VISITOR",
        "MEMBER",
        "USER",
        "mode: elevate",
        "mode: pass_through",
        "access_token",
        "signed_instance",
    ];
    for needle in needles {
        assert!(examples.contains(needle), "no example shows `{needle}`");
    }
    let warned: Vec<&String> = blocks
        .iter()
        .flat_map(|(_, b)| match b {
            Block::Example { warns, .. } => warns.iter().collect(),
            _ => Vec::new(),
        })
        .collect();
    for lint in Lint::ALL {
        assert!(
            warned.iter().any(|w| *w == lint.code()),
            "no example shows warning `{lint}`"
        );
    }
    assert!(
        blocks
            .iter()
            .any(|(name, b)| name == "precedence" && matches!(b, Block::Cases(_))),
        "precedence has checked cases"
    );
}
