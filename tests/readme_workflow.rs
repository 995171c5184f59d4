//! The "Editing policies" walk-through in README.md, run for real: its rule
//! and test cases are added to a copy of the shipped policies, its commands
//! run with the built binary, and their output must be what the README shows.
//! Blocks are found by the `<!-- workflow: NAME -->` marker before them.

use std::path::Path;
use std::process::Command;

fn blocks() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line
            .strip_prefix("<!-- workflow: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert!(lines[i + 1].starts_with("```"), "a block follows {name}");
        let end = (i + 2..lines.len())
            .find(|&j| lines[j] == "```")
            .expect("closed block");
        out.push((name.to_owned(), lines[i + 2..end].join("\n") + "\n"));
    }
    out
}

fn block<'a>(blocks: &'a [(String, String)], name: &str) -> &'a str {
    &blocks
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no workflow block `{name}`"))
        .1
}

fn append(path: &Path, text: &str) {
    let mut current = std::fs::read_to_string(path).unwrap();
    current.push('\n');
    current.push_str(text);
    std::fs::write(path, current).unwrap();
}

/// Runs a README command line (`wix-elevator ...`) in `dir`.
fn run(dir: &Path, line: &str) -> (Option<i32>, String) {
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("wix-elevator"));
    let output = Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .args(words)
        .current_dir(dir)
        .env_remove("WIX_ELEVATOR_CONFIG")
        .env_remove("WIX_APP_ID")
        .env_remove("WIX_APP_SECRET")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn the_editing_policies_walkthrough_prints_what_the_readme_shows() {
    let blocks = blocks();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("proxy.yaml"), dir.path().join("proxy.yaml")).unwrap();
    for sub in ["policies", "policies/tests"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, dir.path().join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    let policy = dir.path().join("policies/wix-data.yaml");
    let rule = block(&blocks, "rule");

    // 2. check, with a broken rule first, then the rule as written.
    let broken = rule
        .replace("[VISITOR, MEMBER]", "[VISITOR, MEMBERS]")
        .replace("max: 50", "max: \"50\"");
    let original = std::fs::read_to_string(&policy).unwrap();
    append(&policy, &broken);
    let check = block(&blocks, "check").trim();
    assert_eq!(
        run(dir.path(), check),
        (Some(1), block(&blocks, "check-errors").to_owned())
    );
    std::fs::write(&policy, original).unwrap();
    append(&policy, rule);
    assert_eq!(
        run(dir.path(), check),
        (Some(0), block(&blocks, "check-output").to_owned())
    );

    // 3. explain
    std::fs::write(dir.path().join("faq.json"), block(&blocks, "body")).unwrap();
    let explain = block(&blocks, "explain").trim();
    assert_eq!(
        run(dir.path(), explain),
        (Some(0), block(&blocks, "explain-output").to_owned())
    );

    // 4. test
    append(
        &dir.path().join("policies/tests/wix-data.yaml"),
        block(&blocks, "case"),
    );
    let test = block(&blocks, "test").trim();
    assert_eq!(
        run(dir.path(), test),
        (Some(0), block(&blocks, "test-output").to_owned())
    );
}
