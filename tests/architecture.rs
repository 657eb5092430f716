//! The layout docs/architecture.md draws, held by the code: each part of the engine uses
//! only the parts below it, no two modules import each other round a circle, the
//! transport never reaches into the command line, and the engine builds without an async
//! runtime, the AWS SDK, an HTTP server or a CLI crate.
//!
//! Imports are read from the source: every `crate::...` path outside comments and
//! outside the `#[cfg(test)]` module at the end of a file (tests may use any part).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The engine's parts, and the parts each may use (besides itself).
const ENGINE_PARTS: &[(&str, &[&str])] = &[
    ("message", &[]),
    ("config", &[]),
    ("envelope", &["config"]),
    ("rules", &["message"]),
    ("stage", &["message", "rules", "config", "envelope"]),
    (
        "stages",
        &["message", "rules", "config", "envelope", "stage"],
    ),
    (
        "flow",
        &["message", "rules", "config", "envelope", "stage", "stages"],
    ),
    (
        "view",
        &["message", "rules", "config", "envelope", "stage", "flow"],
    ),
    (
        "testing",
        &[
            "message", "rules", "config", "envelope", "stage", "stages", "flow",
        ],
    ),
];

/// The root crate's parts. Paths to the engine's re-exports (`crate::pipeline`) are not
/// the root's own parts and are not checked here: the engine cannot import the root.
const ROOT_PARTS: &[(&str, &[&str])] = &[
    ("workmail", &[]),
    ("transport", &["workmail"]),
    ("relay", &["transport", "workmail"]),
    ("milter", &["transport", "workmail"]),
    ("cli", &["workmail", "transport", "relay", "milter"]),
];

/// One source file: its module path (`message::mime_tree`) and its non-test code.
struct Module {
    path: String,
    file: PathBuf,
    code: String,
}

fn modules(src: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts
                    .last()
                    .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
                {
                    parts.pop();
                }
                let text = std::fs::read_to_string(&p).unwrap();
                out.push(Module {
                    path: parts.join("::"),
                    file: p,
                    code: non_test_code(&text),
                });
            }
        }
    }
    out
}

/// The file without comments and without the trailing `#[cfg(test)]` module.
fn non_test_code(text: &str) -> String {
    let end = text
        .find("#[cfg(test)]\nmod tests")
        .or_else(|| text.find("#[cfg(test)]\n    mod tests"))
        .unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b...` path in `code`, as its segments; use-tree groups
/// (`crate::{a, b::{c, d}}`) are expanded into one path each.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `workmail_flow_core::...`, not `crate::`
        }
        expand(rest, &[], &mut out);
    }
    out
}

/// Reads one use tree at the start of `s` (`a::b`, `a::{b, c::d}`), each path it names
/// appended to `prefix`, into `out`.
fn expand(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut rest = s.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            for item in split_group(group) {
                expand(item, &path, out);
            }
            return;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    if path.len() > prefix.len() {
        out.push(path);
    }
}

/// The items of a `{...}` group whose opening brace is already consumed, split at the
/// commas of its own level.
fn split_group(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// The module a path names: the longest module path that is a prefix of it.
fn resolve(path: &[String], known: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|p| known.contains(p))
}

/// Module-level imports: from each module to the modules it names (not to itself, not to
/// the crate root).
fn import_graph(mods: &[Module]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = mods.iter().map(|m| m.path.clone()).collect();
    let mut graph = BTreeMap::new();
    for m in mods {
        let targets: BTreeSet<String> = crate_paths(&m.code)
            .iter()
            .filter_map(|p| resolve(p, &known))
            .filter(|t| !t.is_empty() && *t != m.path && !m.path.starts_with(&format!("{t}::")))
            .collect();
        graph.insert(m.path.clone(), targets);
    }
    graph
}

/// A circle of imports, if there is one, as the modules round it.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == next).unwrap();
                    let mut circle = path[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str())
            && let Some(c) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn part_of(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

/// Every import from one part into a part it may not use, as `file: a -> b`.
fn forbidden_imports(mods: &[Module], parts: &[(&str, &[&str])]) -> Vec<String> {
    let graph = import_graph(mods);
    let allowed: BTreeMap<&str, &[&str]> = parts.iter().copied().collect();
    let mut bad = Vec::new();
    for m in mods {
        let from = part_of(&m.path);
        let Some(may) = allowed.get(from) else {
            continue;
        };
        for to in &graph[&m.path] {
            let to_part = part_of(to);
            if to_part != from && allowed.contains_key(to_part) && !may.contains(&to_part) {
                bad.push(format!("{}: {} -> {to}", m.file.display(), m.path));
            }
        }
    }
    bad
}

fn engine() -> Vec<Module> {
    modules(&Path::new(ROOT).join("crates/workmail-flow-core/src"))
}

fn root() -> Vec<Module> {
    modules(&Path::new(ROOT).join("src"))
}

#[test]
fn every_engine_part_imports_only_the_parts_below_it() {
    let mods = engine();
    let parts: BTreeSet<&str> = mods.iter().map(|m| part_of(&m.path)).collect();
    for p in parts.iter().filter(|p| !p.is_empty()) {
        assert!(
            ENGINE_PARTS.iter().any(|(name, _)| name == p),
            "crates/workmail-flow-core/src/{p} is a part this test does not know: add it to ENGINE_PARTS and docs/architecture.md"
        );
    }
    let bad = forbidden_imports(&mods, ENGINE_PARTS);
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

#[test]
fn engine_code_names_modules_by_their_part_not_by_the_flat_re_exports() {
    let parts: Vec<&str> = ENGINE_PARTS.iter().map(|(p, _)| *p).collect();
    let mut flat = Vec::new();
    for m in engine().iter().filter(|m| !m.path.is_empty()) {
        for p in crate_paths(&m.code) {
            if !parts.contains(&p[0].as_str()) {
                flat.push(format!("{}: crate::{}", m.file.display(), p.join("::")));
            }
        }
    }
    assert!(flat.is_empty(), "{}", flat.join("\n"));
}

#[test]
fn no_modules_import_each_other_round_a_circle() {
    for (name, mods) in [("engine", engine()), ("root", root())] {
        let graph = import_graph(&mods);
        assert!(
            graph.len() > 5,
            "{name}: found only {} modules",
            graph.len()
        );
        if let Some(circle) = find_circle(&graph) {
            panic!("{name}: circle of imports: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_workmail_transport_never_reaches_into_the_command_line() {
    let bad = forbidden_imports(&root(), ROOT_PARTS);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_circle_finder_finds_a_planted_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), ["a".to_string()].into());
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_circle(&graph), None);
    let code = "use crate::stage::{Stage, conditions::{Conditions, header_values}};\n fn f() { crate::message::sniff::x(); workmail_flow_core::flow::y(); }\nuse crate::{flow, rules::limits};";
    let paths: Vec<String> = crate_paths(code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "stage::Stage",
            "stage::conditions::Conditions",
            "stage::conditions::header_values",
            "message::sniff::x",
            "flow",
            "rules::limits"
        ]
    );
}

#[test]
fn every_part_folder_opens_with_what_it_does_and_what_it_may_use() {
    let folders = [
        "crates/workmail-flow-core/src/message",
        "crates/workmail-flow-core/src/rules",
        "crates/workmail-flow-core/src/config",
        "crates/workmail-flow-core/src/envelope",
        "crates/workmail-flow-core/src/stage",
        "crates/workmail-flow-core/src/stages",
        "crates/workmail-flow-core/src/flow",
        "crates/workmail-flow-core/src/view",
        "src/workmail",
        "src/transport",
        "src/relay",
        "src/milter",
        "src/cli",
    ];
    for folder in folders {
        let text = std::fs::read_to_string(Path::new(ROOT).join(folder).join("mod.rs")).unwrap();
        let opening: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!")).collect();
        assert!(
            opening.len() >= 2,
            "{folder}/mod.rs: opening is {opening:?}"
        );
        assert!(
            opening.join(" ").contains("Uses") || opening.join(" ").contains("uses"),
            "{folder}/mod.rs does not say what the part may use: {opening:?}"
        );
    }
}

#[test]
fn the_engine_depends_on_no_async_runtime_aws_crate_http_server_or_cli_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "-p",
            "workmail-flow-core",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains("workmail-flow-core") && names.contains("mail-parser"));
    let forbidden: Vec<&&str> = names
        .iter()
        .filter(|n| {
            ["tokio", "hyper", "lambda_runtime", "clap", "http", "h2"].contains(n)
                || n.starts_with("aws-")
                || n.starts_with("aws_")
                || n.starts_with("tokio-")
                || n.starts_with("hyper-")
                || n.starts_with("clap_")
        })
        .collect();
    assert!(forbidden.is_empty(), "the engine pulls in {forbidden:?}");
}

#[test]
fn an_import_against_the_layering_and_a_circle_are_both_reported() {
    let dir = std::env::temp_dir().join(format!("wmf-arch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("message")).unwrap();
    std::fs::create_dir_all(dir.join("stage")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod message;\npub mod stage;\n").unwrap();
    std::fs::write(dir.join("message/mod.rs"), "pub mod a;\npub mod b;\n").unwrap();
    // message reaches up into stage, and a and b import each other
    std::fs::write(
        dir.join("message/a.rs"),
        "use crate::stage::api::Stage;\nuse crate::message::b::B;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("message/b.rs"),
        "// crate::stage::api in a comment is not an import\nuse crate::message::a::A;\n#[cfg(test)]\nmod tests {\n    use crate::stage::api;\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("stage/mod.rs"), "pub mod api;\n").unwrap();
    std::fs::write(dir.join("stage/api.rs"), "use crate::message::a;\n").unwrap();
    let mods = modules(&dir);
    let bad = forbidden_imports(&mods, ENGINE_PARTS);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].ends_with("message::a -> stage::api"), "{bad:?}");
    let circle = find_circle(&import_graph(&mods)).unwrap();
    assert!(circle.contains(&"message::a".to_string()), "{circle:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
