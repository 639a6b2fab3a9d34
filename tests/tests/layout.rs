//! The layout's two rules, checked on the source itself:
//!
//! 1. **Crates depend only downward.** Every workspace crate's `[dependencies]` on other
//!    workspace crates are within the set `ALLOWED` gives it, which is the layer diagram of
//!    `ARCHITECTURE.md` written as data. (Cargo already refuses a cycle between crates; this
//!    refuses an edge that would go up a layer, such as the engine reaching for a wire format.)
//! 2. **No import circle between files.** Within each crate, a file's imports (`use` trees,
//!    and paths in code that start with `crate::`, `super::`, `self::` or a child module's
//!    name) are resolved to the file that defines the module they name; the graph of those
//!    edges must have no cycle. Declaring a module (`mod x;`) is not an import, and neither
//!    is a submodule's use of its own ancestors' items (`head/series.rs` using a type of
//!    `head.rs`): a module and its submodules are one unit, as a folder is one room. Every
//!    other import counts, a module's use of its submodules included, so two sibling files
//!    cannot lean on each other, nor can a file lean on a sibling of its parent that leans
//!    back on the parent. Test code (`#[cfg(test)]` items and test files) is left out: tests
//!    may reach anywhere.
//!
//! The reader is a small lexer, not a compiler: it drops comments, strings and character
//! literals, then reads paths as identifiers joined by `::`. An import through a re-export
//! resolves to the re-exporting file, so code imports items from the file that defines them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// What each workspace crate may depend on (its `[dependencies]`, not dev-dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("strata-core", &[]),
    ("strata-template", &[]),
    ("strata-wal", &["strata-core"]),
    ("strata-tsdb", &["strata-core", "strata-wal"]),
    ("strata-logs", &["strata-core", "strata-wal"]),
    (
        "strata-logql",
        &["strata-core", "strata-logs", "strata-template"],
    ),
    ("strata-promql", &["strata-core", "strata-tsdb"]),
    (
        "strata-engine",
        &[
            "strata-core",
            "strata-wal",
            "strata-tsdb",
            "strata-logs",
            "strata-logql",
            "strata-promql",
            "strata-template",
        ],
    ),
    ("strata-wire", &[]),
    ("strata-testkit", &[]),
    ("strata-server", &["strata-engine", "strata-wire"]),
    ("strata-bench", &["strata-wire", "strata-testkit"]),
    (
        "strata-tests",
        &[
            "strata-engine",
            "strata-server",
            "strata-bench",
            "strata-wire",
            "strata-testkit",
        ],
    ),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The workspace members' directories, from the top-level `Cargo.toml`.
fn members(root: &Path) -> Vec<PathBuf> {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    let start = manifest.find("members").expect("a members list");
    let list = &manifest[start..];
    let list = &list[list.find('[').expect("[")..=list.find(']').expect("]")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(|m| root.join(m))
        .collect()
}

/// A manifest's package name and the workspace crates in its `[dependencies]` section.
fn manifest_deps(dir: &Path) -> (String, Vec<String>) {
    let text = fs::read_to_string(dir.join("Cargo.toml")).expect("read a member's Cargo.toml");
    let mut name = String::new();
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let key = line.split(['=', '.', ' ']).next().unwrap_or("");
        if section == "[package]" && key == "name" {
            name = line.split('"').nth(1).unwrap_or("").to_owned();
        }
        if section == "[dependencies]" && key.starts_with("strata-") {
            deps.push(key.to_owned());
        }
    }
    (name, deps)
}

#[test]
fn workspace_crates_depend_only_downward() {
    let root = workspace_root();
    let allowed: HashMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for dir in members(&root) {
        let (name, deps) = manifest_deps(&dir);
        let Some(ok) = allowed.get(name.as_str()) else {
            problems.push(format!(
                "{name} is not in the layer table: add it to ALLOWED in tests/tests/layout.rs and to ARCHITECTURE.md"
            ));
            continue;
        };
        for d in deps {
            if !ok.contains(&d.as_str()) {
                problems.push(format!(
                    "{name} depends on {d}, which its layer may not use"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_import_circle_between_files() {
    let root = workspace_root();
    let mut circles = Vec::new();
    let mut files_read = 0;
    for dir in members(&root) {
        let src = dir.join("src");
        let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| src.join(f))
            .filter(|p| p.exists())
            .collect();
        if let Ok(bins) = fs::read_dir(src.join("bin")) {
            roots.extend(bins.flatten().map(|e| e.path()));
        }
        for crate_root in roots {
            let graph = CrateGraph::read(&crate_root);
            files_read += graph.files.len();
            for scc in graph.circles() {
                circles.push(scc.join(" -> "));
            }
        }
    }
    assert!(
        files_read > 50,
        "read only {files_read} files: is the workspace layout found?"
    );
    assert!(
        circles.is_empty(),
        "import circles between files (each line: files that import each other):\n{}",
        circles.join("\n")
    );
}

/// The files of one crate (one root), by module path, and the import edges between them.
struct CrateGraph {
    /// Module path (`["promql", "eval"]`; the root is `[]`) to its file.
    modules: BTreeMap<Vec<String>, PathBuf>,
    /// File to the module path it defines.
    files: BTreeMap<PathBuf, Vec<String>>,
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl CrateGraph {
    fn read(root: &Path) -> CrateGraph {
        let mut g = CrateGraph {
            modules: BTreeMap::new(),
            files: BTreeMap::new(),
            edges: BTreeMap::new(),
        };
        let mut sources: Vec<(PathBuf, Vec<String>, String)> = Vec::new();
        let mut todo = vec![(root.to_path_buf(), Vec::new())];
        while let Some((file, module)) = todo.pop() {
            let raw =
                fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let code = without_tests(&strip(&raw));
            // Where this file's child modules live: `a.rs` has them in `a/`, a crate root and
            // `mod.rs` beside themselves.
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let child_dir = if module.is_empty() || stem == "mod" {
                file.parent().expect("a directory").to_path_buf()
            } else {
                file.with_extension("")
            };
            for child in declared_modules(&code) {
                let mut path = module.clone();
                path.push(child.clone());
                let direct = child_dir.join(format!("{child}.rs"));
                let nested = child_dir.join(&child).join("mod.rs");
                let child_file = if direct.exists() { direct } else { nested };
                if child_file.exists() {
                    todo.push((child_file, path));
                }
            }
            g.modules.insert(module.clone(), file.clone());
            g.files.insert(file.clone(), module.clone());
            sources.push((file, module, code));
        }
        for (file, module, code) in &sources {
            let children: BTreeSet<String> = declared_modules(code).into_iter().collect();
            let mut targets = BTreeSet::new();
            for path in paths(code, &children) {
                let Some(target) = g.resolve(module, &path) else {
                    continue;
                };
                // A submodule using its own module's items stays inside that module.
                if !module.starts_with(&g.files[&target]) {
                    targets.insert(target);
                }
            }
            g.edges.insert(file.clone(), targets);
        }
        g
    }

    /// The file that a path used in `module` names, if it is a module of this crate.
    fn resolve(&self, module: &[String], path: &[String]) -> Option<PathBuf> {
        let mut base: Vec<String> = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            // A child module's name.
            _ => {}
        }
        let mut found = self.modules.get(&base).cloned();
        let mut at = base;
        for seg in rest {
            at.push(seg.clone());
            match self.modules.get(&at) {
                Some(f) => found = Some(f.clone()),
                None => break,
            }
        }
        found
    }

    /// Strongly connected groups of more than one file (Tarjan's algorithm).
    fn circles(&self) -> Vec<Vec<String>> {
        let ids: Vec<&PathBuf> = self.files.keys().collect();
        let index_of: HashMap<&PathBuf, usize> =
            ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let adj: Vec<Vec<usize>> = ids
            .iter()
            .map(|f| {
                self.edges[*f]
                    .iter()
                    .filter_map(|t| index_of.get(t).copied())
                    .collect()
            })
            .collect();
        let mut t = Tarjan {
            adj: &adj,
            index: vec![usize::MAX; ids.len()],
            low: vec![0; ids.len()],
            on_stack: vec![false; ids.len()],
            stack: Vec::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in 0..ids.len() {
            if t.index[v] == usize::MAX {
                t.visit(v);
            }
        }
        let root = workspace_root();
        t.out
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .map(|scc| {
                scc.into_iter()
                    .map(|v| {
                        ids[v]
                            .strip_prefix(&root)
                            .unwrap_or(ids[v])
                            .display()
                            .to_string()
                    })
                    .collect()
            })
            .collect()
    }
}

struct Tarjan<'a> {
    adj: &'a [Vec<usize>],
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    out: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = self.next;
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.adj[v] {
            if self.index[w] == usize::MAX {
                self.visit(w);
                self.low[v] = self.low[v].min(self.low[w]);
            } else if self.on_stack[w] {
                self.low[v] = self.low[v].min(self.index[w]);
            }
        }
        if self.low[v] == self.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            self.out.push(scc);
        }
    }
}

/// `code` without comments, string literals and character literals (each replaced by a
/// space), so that only code is left to read.
fn strip(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            'r' if !ident_before(&c, i) && raw_string_at(&c, i + 1).is_some() => {
                i = raw_string_at(&c, i + 1).expect("checked");
                out.push(' ');
            }
            'b' if !ident_before(&c, i)
                && c.get(i + 1) == Some(&'r')
                && raw_string_at(&c, i + 2).is_some() =>
            {
                i = raw_string_at(&c, i + 2).expect("checked");
                out.push(' ');
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push(' ');
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
                if c.get(i + 1) == Some(&'\\') {
                    i += 2;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                    out.push(' ');
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 3;
                    out.push(' ');
                } else {
                    out.push('\'');
                    i += 1;
                }
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

fn ident_before(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// If a raw string's hashes and quote start at `i`, the index just after its end.
fn raw_string_at(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    let hashes = j - i;
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// `code` without its `#[cfg(test)]` items (a test module, or a `use` for tests).
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its first `;` if that comes before any `{`, else at the brace
        // that closes its first `{`.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = after.len();
                for (k, ch) in after[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The names of the modules `code` declares from files (`mod x;`, `pub mod x;`).
fn declared_modules(code: &str) -> Vec<String> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    for w in tokens.windows(3) {
        if w[0] == "mod" && w[2] == ";" && is_ident(&w[1]) {
            out.push(w[1].clone());
        }
    }
    out
}

/// Every path of this crate's modules that `code` uses: `use` trees expanded, and paths in
/// code that start with `crate`, `super`, `self` or one of `children`.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            let end = tokens[i..]
                .iter()
                .position(|t| t == ";")
                .map_or(tokens.len(), |p| i + p);
            expand_use(&tokens[i + 1..end], &[], &mut out);
            i = end;
            continue;
        }
        let starts = matches!(tokens[i].as_str(), "crate" | "super" | "self")
            || children.contains(&tokens[i]);
        let after_colons = i >= 1 && tokens[i - 1] == "::";
        if starts && !after_colons && tokens.get(i + 1).map(String::as_str) == Some("::") {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).map(String::as_str) == Some("::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            out.push(path);
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Expands one `use` tree (`a::{b, c::d as e, self}`) under `prefix` into its paths.
fn expand_use(tokens: &[String], prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut named = false;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "{" => {
                // One path per element of the group, split at its top-level commas.
                let mut level = 0;
                let mut start = i + 1;
                for j in i + 1..tokens.len() {
                    match tokens[j].as_str() {
                        "{" => level += 1,
                        "}" if level > 0 => level -= 1,
                        "," if level == 0 => {
                            expand_use(&tokens[start..j], &path, out);
                            start = j + 1;
                        }
                        "}" if level == 0 => {
                            expand_use(&tokens[start..j], &path, out);
                            break;
                        }
                        _ => {}
                    }
                }
                return;
            }
            // A rename or a glob names what came before it.
            "as" | "*" => {
                named = true;
                break;
            }
            // `self` first is the current module; inside a group it is the group's module.
            "self" if !path.is_empty() => {
                named = true;
                i += 1;
            }
            t if is_ident(t) => {
                path.push(t.to_owned());
                named = true;
                i += 1;
            }
            // `::`, and the visibility before `use` that the caller left out.
            _ => i += 1,
        }
    }
    if named {
        out.push(path);
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else if ch.is_whitespace() {
            i += 1;
        } else {
            out.push(ch.to_string());
            i += 1;
        }
    }
    out
}

#[test]
fn the_reader_finds_a_circle_it_is_shown() {
    // Two files that import each other, written to a scratch crate.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("a")).expect("mkdir");
    fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").expect("write");
    fs::write(
        src.join("a.rs"),
        "mod inner;\nuse crate::b::B;\npub struct A;\n",
    )
    .expect("write");
    fs::write(
        src.join("a/inner.rs"),
        "// use crate::b::ignored;\npub fn f() { let _ = \"crate::b\"; }\n",
    )
    .expect("write");
    fs::write(
        src.join("b.rs"),
        "pub struct B;\nfn g() -> crate::a::A { crate::a::A }\n#[cfg(test)]\nmod tests { use crate::a::inner; }\n",
    )
    .expect("write");
    let graph = CrateGraph::read(&src.join("lib.rs"));
    let circles = graph.circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert_eq!(circles[0].len(), 2);
    // Comments, strings and test modules are no imports.
    assert!(graph.edges[&src.join("a/inner.rs")].is_empty());
    // Nor is a submodule's use of its own module.
    fs::write(
        src.join("a/inner.rs"),
        "use super::A;\npub fn f() -> A { A }\n",
    )
    .expect("write");
    assert!(CrateGraph::read(&src.join("lib.rs")).edges[&src.join("a/inner.rs")].is_empty());
    assert_eq!(
        graph.edges[&src.join("b.rs")],
        BTreeSet::from([src.join("a.rs")])
    );

    // Without the back edge there is none.
    fs::write(src.join("b.rs"), "pub struct B;\n").expect("write");
    assert!(CrateGraph::read(&src.join("lib.rs")).circles().is_empty());

    // `use` trees with groups, renames and `self`.
    let paths = paths(
        &strip("use crate::{a::{self, X as Y}, b::*};\nuse super::c;"),
        &BTreeSet::new(),
    );
    assert_eq!(
        paths,
        [
            vec!["crate", "a"],
            vec!["crate", "a", "X"],
            vec!["crate", "b"],
            vec!["super", "c"]
        ]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
}
