//! The module graph's rules, read from the source:
//! - the `use crate::` graph between the files of `src/` has no cycle;
//! - only `main.rs`, `cli.rs` and the benches import the wiring module
//!   (`startup`); features take the shared state from `state`;
//! - the leaf modules import nothing of the crate but other leaves.
//!
//! The graph counts every `crate::a::b` path a file names outside comments
//! and its `#[cfg(test)]` module, resolved to the deepest module file that
//! exists (`src/a/b.rs` or `src/a/b/mod.rs`, else `src/a.rs` …). `super::`
//! and `self::` paths stay inside a module's own folder and are not counted.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

type Module = Vec<String>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by its module path.
fn modules() -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(src()).unwrap().with_extension("");
            let mut parts: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts, path)
        })
        .collect()
}

/// The code of a file without comments and without its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal ("https://…") is kept: only
            // whole-line and trailing comments after code are cut, and a
            // path never follows a `//` on a line.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path `crate::…` names, use trees expanded (`crate::a::{b, c::d}`
/// names `a::b` and `a::c::d`).
fn crate_paths(code: &str) -> Vec<Module> {
    fn ident(s: &str) -> usize {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    }
    /// Parses a use tree at `s` under `prefix`; returns how much it read.
    fn tree(s: &str, prefix: &Module, out: &mut Vec<Module>) -> usize {
        let mut path = prefix.clone();
        let mut i = 0;
        loop {
            let rest = &s[i..];
            let trimmed = rest.trim_start();
            i += rest.len() - trimmed.len();
            if let Some(inner) = trimmed.strip_prefix('{') {
                i += 1;
                let mut j = 0;
                loop {
                    let r = &inner[j..];
                    let t = r.trim_start();
                    j += r.len() - t.len();
                    if t.starts_with('}') {
                        return i + j + 1;
                    }
                    j += tree(&inner[j..], &path, out);
                    let r = &inner[j..];
                    let t = r.trim_start();
                    j += r.len() - t.len();
                    if t.starts_with(',') {
                        j += 1;
                    }
                }
            }
            let n = ident(trimmed);
            if n == 0 {
                out.push(path);
                return i;
            }
            let name = &trimmed[..n];
            if name != "self" {
                path.push(name.to_string());
            }
            i += n;
            match s[i..].strip_prefix("::") {
                Some(_) => i += 2,
                None => {
                    out.push(path);
                    return i;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `$crate::`, `warmline_crate::` and the like are not ours.
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let read = tree(rest, &Vec::new(), &mut out);
        rest = &rest[read..];
    }
    out
}

/// The deepest module file a path lands in.
fn resolve(path: &Module, modules: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains_key(m))
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules();
    modules
        .iter()
        .map(|(m, file)| {
            let deps = crate_paths(&code(file))
                .iter()
                .filter_map(|p| resolve(p, &modules))
                .filter(|d| d != m && !d.is_empty())
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

fn name(m: &Module) -> String {
    m.join("::")
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let g = s.g;
        for w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                component.push(name(w));
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
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn module(path: &str) -> Module {
    path.split("::").map(str::to_string).collect()
}

#[test]
fn the_module_graph_has_no_cycle() {
    // Arrange
    let g = graph();
    assert!(
        g.len() > 100,
        "the source tree was not found ({} files)",
        g.len()
    );

    // Act
    let found = cycles(&g);

    // Assert
    assert!(
        found.is_empty(),
        "import cycles between modules (break them by moving the shared piece down): {found:#?}"
    );
}

#[test]
fn only_the_entry_points_and_benches_import_the_wiring_module() {
    // Arrange
    let g = graph();
    let startup = module("startup");

    // Act
    let importers: Vec<String> = g
        .iter()
        .filter(|(_, deps)| deps.contains(&startup))
        .map(|(m, _)| name(m))
        .filter(|m| m != "cli" && m != "main" && !m.starts_with("bench"))
        .collect();

    // Assert
    assert!(
        importers.is_empty(),
        "features import the wiring module; take `state::App` instead: {importers:?}"
    );
}

#[test]
fn leaf_modules_import_only_leaves_and_the_domain() {
    // Arrange: modules every feature may depend on, so they must not depend
    // on features.
    let g = graph();
    let leaves: Vec<Module> = g
        .keys()
        .filter(|m| {
            m.last().is_some_and(|l| l == "settings" || l == "actions")
                || m.first().is_some_and(|f| f == "domain")
                || *m == &module("settings::env")
                || *m == &module("settings::error")
        })
        .cloned()
        .collect();
    let allowed = |dep: &Module| {
        dep.first().is_some_and(|f| f == "domain")
            || dep.last().is_some_and(|l| l == "settings")
            || leaves.contains(dep)
            // A feature's pure model may sit under its settings (warmth).
            || dep == &module("warmth::model")
    };

    // Act
    let offending: Vec<String> = leaves
        .iter()
        .filter(|m| *m != &module("settings"))
        .flat_map(|m| {
            g[m].iter()
                .filter(|d| !allowed(d))
                .map(move |d| format!("{} -> {}", name(m), name(d)))
        })
        .collect();

    // Assert
    assert!(
        offending.is_empty(),
        "leaf modules depend on features: {offending:?}"
    );
}

#[test]
fn only_the_sandbox_moves_the_clock_and_only_the_wiring_knows_the_sandbox() {
    // Arrange
    let modules = modules();

    // Act
    let movers: Vec<String> = modules
        .iter()
        .filter(|(_, path)| code(path).contains("clock::advance("))
        .map(|(m, _)| name(m))
        .filter(|m| !m.starts_with("sandbox"))
        .collect();
    let g = graph();
    let users: Vec<String> = g
        .iter()
        .filter(|(m, deps)| {
            m.first().is_none_or(|f| f != "sandbox")
                && deps
                    .iter()
                    .any(|d| d.first().is_some_and(|f| f == "sandbox"))
        })
        .map(|(m, _)| name(m))
        .filter(|m| m != "cli" && m != "startup")
        .collect();

    // Assert
    assert!(
        movers.is_empty(),
        "only the sandbox may move warmline's clock: {movers:?}"
    );
    assert!(
        users.is_empty(),
        "features must not depend on the sandbox (it sits on top of them): {users:?}"
    );
}

#[test]
fn the_path_reader_expands_use_trees_and_skips_other_crates() {
    let paths = crate_paths(
        "use crate::{a::{b, c::D}, e};\nlet x = crate::f::g(1);\n$crate::h::i!();\nuse crate::j::{self, k};",
    );
    let names: Vec<String> = paths.iter().map(name).collect();
    assert_eq!(names, ["a::b", "a::c::D", "e", "f::g", "j", "j::k"]);
}
