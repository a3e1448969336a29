//! The house keeps its shape: no import circle between the library's modules
//! and no import that a "must not import" rule of ARCHITECTURE.md forbids.
//!
//! Imports are read as text from the production part of each file under
//! `src/` (a file's `#[cfg(test)]` tail and test-only modules are left out):
//! `use crate::…`, `use super::…`, `use self::…`, and inline `crate::…`
//! paths. A path names the longest module it reaches; an item that a module
//! re-exports with `pub use` counts as an import of the module that defines
//! it, so a facade `mod.rs` is not a circle with its children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`aws::credentials::chain`, `crate` for lib.rs) -> production text.
type Sources = BTreeMap<String, String>;
/// Module -> modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    if parts.is_empty() {
        "crate".to_string()
    } else {
        parts.join("::")
    }
}

/// What ships: the text without its `#[cfg(test)]` items (a test-only
/// `use` or `mod x;` line, or a block up to its closing `}` at column 0)
/// and without comments, which name modules without importing them.
fn production(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]") {
            let Some(item) = lines.next() else { break };
            if !item.trim_end().ends_with(';') {
                for inner in lines.by_ref() {
                    if inner.starts_with('}') {
                        break;
                    }
                }
            }
            continue;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Modules declared `#[cfg(test)] mod NAME;` (whole test-only files).
fn test_only_children(module: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for pair in lines.windows(2) {
        if pair[0].trim() == "#[cfg(test)]" {
            let decl = pair[1].trim();
            if let Some(name) = decl
                .strip_prefix("mod ")
                .or_else(|| decl.strip_prefix("pub mod "))
                .and_then(|rest| rest.strip_suffix(';'))
            {
                out.push(join(module, name));
            }
        }
    }
    out
}

fn join(module: &str, name: &str) -> String {
    if module == "crate" {
        name.to_string()
    } else {
        format!("{module}::{name}")
    }
}

fn parent(module: &str) -> String {
    match module.rsplit_once("::") {
        Some((p, _)) => p.to_string(),
        None => "crate".to_string(),
    }
}

fn read_sources(src: &Path) -> Sources {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut all = BTreeMap::new();
    for file in files {
        let module = module_of(file.strip_prefix(src).unwrap());
        all.insert(module, std::fs::read_to_string(&file).unwrap());
    }
    let test_only: BTreeSet<String> = all
        .iter()
        .flat_map(|(m, text)| test_only_children(m, text))
        .collect();
    all.into_iter()
        .filter(|(m, _)| {
            !test_only
                .iter()
                .any(|t| m == t || m.starts_with(&format!("{t}::")))
        })
        .map(|(m, text)| (m, production(&text)))
        .collect()
}

/// `pub use` re-exports: (module, item) -> the module path the item comes from.
fn re_exports(sources: &Sources) -> BTreeMap<(String, String), String> {
    let mut map = BTreeMap::new();
    for (module, text) in sources {
        for statement in statements(text, "pub use ") {
            for (path, item) in expand(&statement) {
                if let Some(target) = absolute(module, &path) {
                    map.insert((module.clone(), item), target);
                }
            }
        }
    }
    map
}

/// The `use` statements starting with `prefix`, whole (they may span lines).
fn statements(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let at_line_start = rest[..i]
            .rsplit('\n')
            .next()
            .is_some_and(|before| before.trim().is_empty());
        let tail = &rest[i + prefix.len()..];
        let end = tail.find(';').unwrap_or(tail.len());
        if at_line_start {
            out.push(tail[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        }
        rest = &tail[end..];
    }
    out
}

/// `a::b::{C, d::E}` -> [(a::b, C), (a::b::d, E)]: the path of each imported item.
fn expand(statement: &str) -> Vec<(String, String)> {
    let statement = statement.replace(' ', "");
    match statement.find('{') {
        None => {
            let (path, item) = statement.rsplit_once("::").unwrap_or(("", &statement));
            let item = item.split("as").next().unwrap_or(item);
            vec![(path.to_string(), item.to_string())]
        }
        Some(open) => {
            let base = statement[..open].trim_end_matches("::");
            let inner = &statement[open + 1..statement.rfind('}').unwrap_or(statement.len())];
            split_top_level(inner)
                .into_iter()
                .flat_map(|part| {
                    let joined = if base.is_empty() {
                        part
                    } else {
                        format!("{base}::{part}")
                    };
                    expand(&joined)
                })
                .collect()
        }
    }
}

fn split_top_level(inner: &str) -> Vec<String> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(inner[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(inner[start..].to_string());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// A path as written in `module` (`crate::…`, `super::…`, `self::…`, or a
/// child's name) as a path from the crate root; `None` for other crates.
fn absolute(module: &str, path: &str) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return None;
    }
    let mut base = match segments[0] {
        "crate" => {
            segments.remove(0);
            "crate".to_string()
        }
        "super" | "self" => module.to_string(),
        // `pub use child::X` in a module: a child of this module.
        _ => module.to_string(),
    };
    while let Some(&first) = segments.first() {
        match first {
            "super" => base = parent(&base),
            "self" => {}
            _ => break,
        }
        segments.remove(0);
    }
    let mut out = base;
    for s in segments {
        out = join(&out, s);
    }
    Some(out)
}

/// The longest module that `path` (from the crate root) reaches, following
/// re-exports to the module that defines the item.
fn resolve(
    path: &str,
    modules: &BTreeSet<String>,
    re_exports: &BTreeMap<(String, String), String>,
) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    let mut best = None;
    let mut current = "crate".to_string();
    for (i, s) in segments.iter().enumerate() {
        if *s == "crate" {
            continue;
        }
        let next = join(&current, s);
        if modules.contains(&next) {
            current = next;
            best = Some((current.clone(), i));
        } else {
            if let Some(from) = re_exports.get(&(current.clone(), s.to_string())) {
                let via = join(from, s);
                return resolve(&via, modules, re_exports)
                    .or_else(|| Some(from.clone()))
                    .filter(|m| modules.contains(m));
            }
            break;
        }
    }
    best.map(|(m, _)| m)
}

fn graph(sources: &Sources) -> Graph {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let re_exports = re_exports(sources);
    let mut graph = Graph::new();
    for (module, text) in sources {
        let mut paths = Vec::new();
        for prefix in ["use ", "pub use ", "pub(crate) use ", "pub(super) use "] {
            for statement in statements(text, prefix) {
                if prefix == "use " && statement.starts_with("crate::") {
                    // also caught below as an inline path; harmless
                }
                for (path, item) in expand(&statement) {
                    paths.push(format!("{path}::{item}"));
                }
            }
        }
        // Inline paths: `crate::a::b::f(…)`.
        let mut rest = text.as_str();
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                paths.push(tail[..end].trim_end_matches(':').to_string());
            }
            rest = &tail[end..];
        }
        // Bare paths to a child module: `receiver::run(…)` in `poller`.
        for child in modules.iter().filter(|m| parent(m) == *module) {
            let name = child.rsplit("::").next().unwrap();
            let needle = format!("{name}::");
            let mut rest = text.as_str();
            while let Some(i) = rest.find(&needle) {
                let before = rest[..i].chars().last();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    let tail = &rest[i..];
                    let end = tail
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .unwrap_or(tail.len());
                    paths.push(format!("self::{}", tail[..end].trim_end_matches(':')));
                }
                rest = &rest[i + needle.len()..];
            }
        }
        let edges = graph.entry(module.clone()).or_default();
        for path in paths {
            let Some(path) = absolute(module, &path) else {
                continue;
            };
            if let Some(target) = resolve(&path, &modules, &re_exports)
                && target != *module
                && target != "crate"
            {
                edges.insert(target);
            }
        }
    }
    graph
}

/// Every circle, each as the modules on it (strongly connected components of
/// more than one module).
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iterative enough for a few hundred modules.
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let targets: Vec<&'a str> = s
            .graph
            .get(v)
            .map(|t| t.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

/// A rule of ARCHITECTURE.md: modules under `from` must not import modules under any of `not`.
#[derive(Debug)]
struct Rule {
    from: String,
    not: Vec<String>,
}

/// Lines of the form ``- `from` must not import `a`, `b`, `c` `` (the
/// section "Rules the tests check").
fn rules(architecture: &str) -> Vec<Rule> {
    architecture
        .lines()
        .filter_map(|line| {
            let line = line.trim().strip_prefix("- ")?;
            let (from, rest) = line.split_once(" must not import ")?;
            let from = from.trim().trim_matches('`').to_string();
            let not = rest
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>();
            (!not.is_empty()).then_some(Rule { from, not })
        })
        .collect()
}

fn under(module: &str, prefix: &str) -> bool {
    prefix == "*" || module == prefix || module.starts_with(&format!("{prefix}::"))
}

fn broken_rules(graph: &Graph, rules: &[Rule]) -> Vec<String> {
    let mut out = Vec::new();
    for rule in rules {
        for (module, targets) in graph {
            if !under(module, &rule.from) {
                continue;
            }
            for target in targets {
                for not in &rule.not {
                    if under(target, not) && !under(target, &rule.from) {
                        out.push(format!(
                            "{module} imports {target}, but `{}` must not import `{not}`",
                            rule.from
                        ));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_library_has_no_import_circle_and_keeps_every_rule_of_architecture_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = read_sources(&root.join("src"));
    assert!(sources.len() > 30, "read {} modules", sources.len());
    let graph = graph(&sources);
    let circles = circles(&graph);
    assert!(
        circles.is_empty(),
        "import circles between modules:\n{}",
        circles
            .iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let rules = rules(&architecture);
    assert!(
        rules.len() >= 8,
        "ARCHITECTURE.md states {} rules",
        rules.len()
    );
    for rule in &rules {
        assert!(
            sources.keys().any(|m| under(m, &rule.from)),
            "ARCHITECTURE.md names `{}`, which is no module",
            rule.from
        );
        for not in &rule.not {
            assert!(
                sources.keys().any(|m| under(m, not)),
                "ARCHITECTURE.md names `{not}`, which is no module"
            );
        }
    }
    let broken = broken_rules(&graph, &rules);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_circles_re_exports_and_broken_rules() {
    let sources: Sources = [
        ("a", "use crate::b::f;\n"),
        ("b", "pub fn f() { crate::c::g() }\n"),
        ("c", "use super::a;\n"),
        ("d", "pub use self::e::Item;\nmod e;\nfn h() { e::k() }\n"),
        ("d::e", "pub struct Item;\n"),
        ("f", "#[cfg(test)]\nuse crate::a;\nuse crate::d::Item;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n"),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_string(), production(t)))
    .collect();
    let graph = graph(&sources);
    assert_eq!(circles(&graph), vec![vec!["a", "b", "c"]]);
    // The re-export leads to the defining module; the test tail is ignored.
    assert_eq!(graph["f"], BTreeSet::from(["d::e".to_string()]));
    let rules = rules("- `f` must not import `d`\n- `a` must not import `b`, `x`\n");
    assert_eq!(rules.len(), 2);
    let broken = broken_rules(&graph, &rules);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].contains("f imports d::e"), "{broken:?}");
}
