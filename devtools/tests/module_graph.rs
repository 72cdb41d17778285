//! The dependency picture of every crate of the workspace has no cycles:
//! neither between its top-level modules nor between its files.
//!
//! Each source file is read with `syn`; every path it names that leads
//! into its own crate (`crate::…`, `super::…`, `self::…`, and in a file
//! with child modules, a child's name) is an edge from that file to the
//! file that defines the module the path enters. A `pub use` of a child's
//! item is an edge too: a `mod.rs` that re-exports its children must not
//! also be where they get their types from. A cycle fails the test with
//! the files on it.
#![deny(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// A module path inside a crate, e.g. `["xlate", "ctx"]` (empty: the root).
type ModPath = Vec<String>;

struct Crate {
    name: String,
    /// Module path → file.
    files: BTreeMap<ModPath, PathBuf>,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every module file under `src`, by module path.
fn modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("src dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if parts.first().is_some_and(|f| f == "bin") || parts == ["main"] {
                continue; // binaries are crates of their own
            }
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts, p);
        }
    }
    out
}

/// Collects the paths a file names (use trees expanded), each with the
/// inline module it is named in (relative to the file's module).
#[derive(Default)]
struct Paths {
    inline: Vec<String>,
    paths: Vec<(Vec<String>, Vec<String>)>,
}

impl Paths {
    fn push(&mut self, path: Vec<String>) {
        self.paths.push((self.inline.clone(), path));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, t: &syn::UseTree) {
        match t {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut v = prefix.clone();
                v.push(n.ident.to_string());
                self.push(v);
            }
            syn::UseTree::Rename(r) => {
                let mut v = prefix.clone();
                v.push(r.ident.to_string());
                self.push(v);
            }
            syn::UseTree::Glob(_) => self.push(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(crate)`, `pub(super)`, `pub(in path)` say who may see an
        // item, not what it uses.
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.inline.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.inline.pop();
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // Paths inside macro calls (format!, assert!, matches!, …).
        let text = m.tokens.to_string();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == ' '))
        {
            let w: String = word.split_whitespace().collect();
            if w.contains("::") {
                self.push(w.split("::").map(str::to_string).collect());
            }
        }
        syn::visit::visit_macro(self, m);
    }
}

/// The module file a path from `from` (a file of module `here`) enters.
fn target(files: &BTreeMap<ModPath, PathBuf>, here: &ModPath, path: &[String]) -> Option<ModPath> {
    let first = path.first()?;
    let parent = || here[..here.len().saturating_sub(1)].to_vec();
    let (mut base, rest): (ModPath, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (here.clone(), &path[1..]),
        "super" => {
            let mut b = parent();
            let mut rest = &path[1..];
            while rest.first().map(String::as_str) == Some("super") {
                b.pop();
                rest = &rest[1..];
            }
            (b, rest)
        }
        // A child module declared in this file, named bare (a path of one
        // segment is a value or a type, not a module).
        name if path.len() > 1 && {
            let mut child = here.clone();
            child.push(name.to_string());
            files.contains_key(&child)
        } =>
        {
            (here.clone(), path)
        }
        _ => return None,
    };
    // The longest prefix of `rest` that is a module.
    let mut best = base.clone();
    for seg in rest {
        base.push(seg.clone());
        if files.contains_key(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// Edges between the crate's files (module paths).
fn edges(c: &Crate) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut out: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (here, file) in &c.files {
        let text = std::fs::read_to_string(file).expect("source");
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut v = Paths::default();
        v.visit_file(&ast);
        let set = out.entry(here.clone()).or_default();
        for (inline, p) in &v.paths {
            let at: ModPath = here.iter().chain(inline).cloned().collect();
            if let Some(t) = target(&c.files, &at, p) {
                // A module's own children and itself are not edges to it.
                if &t != here {
                    if std::env::var_os("MODULE_GRAPH_DEBUG").is_some() {
                        eprintln!("{} -> {} via {}", show(here), show(&t), p.join("::"));
                    }
                    set.insert(t);
                }
            }
        }
    }
    out
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles<N: Ord + Clone>(g: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct St<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        on: BTreeSet<N>,
        stack: Vec<N>,
        next: usize,
        out: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(n: &N, g: &BTreeMap<N, BTreeSet<N>>, s: &mut St<N>) {
        s.index.insert(n.clone(), s.next);
        s.low.insert(n.clone(), s.next);
        s.next += 1;
        s.stack.push(n.clone());
        s.on.insert(n.clone());
        for m in g.get(n).into_iter().flatten() {
            if !s.index.contains_key(m) {
                visit(m, g, s);
                let l = s.low[m].min(s.low[n]);
                s.low.insert(n.clone(), l);
            } else if s.on.contains(m) {
                let l = s.index[m].min(s.low[n]);
                s.low.insert(n.clone(), l);
            }
        }
        if s.low[n] == s.index[n] {
            let mut comp = Vec::new();
            while let Some(m) = s.stack.pop() {
                s.on.remove(&m);
                let done = m == *n;
                comp.push(m);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = St {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in g.keys() {
        if !s.index.contains_key(n) {
            visit(n, g, &mut s);
        }
    }
    s.out
}

/// The workspace's member crates, as its Cargo.toml lists them.
fn crates() -> Vec<Crate> {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Value = manifest.parse().expect("Cargo.toml parses");
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members");
    let crates: Vec<Crate> = members
        .iter()
        .map(|m| {
            let name = m.as_str().expect("a member is a path").to_string();
            let files = modules(&workspace().join(&name).join("src"));
            Crate { name, files }
        })
        .collect();
    assert!(crates.len() >= 4, "the workspace's crates were not found");
    crates
}

fn show(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_file_of_a_crate_depends_on_itself_through_others() {
    let mut problems = Vec::new();
    for c in crates() {
        let g = edges(&c);
        for comp in cycles(&g) {
            let inside: Vec<String> = comp
                .iter()
                .flat_map(|f| {
                    g[f].iter()
                        .filter(|t| comp.contains(t))
                        .map(move |t| format!("{} -> {}", show(f), show(t)))
                })
                .collect();
            problems.push(format!(
                "{}: files in a cycle: {} ({})",
                c.name,
                comp.iter().map(show).collect::<Vec<_>>().join(", "),
                inside.join("; ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_top_level_module_of_a_crate_depends_on_itself_through_others() {
    let mut problems = Vec::new();
    for c in crates() {
        let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, tos) in edges(&c) {
            let Some(f) = from.first() else { continue };
            for to in tos {
                let Some(t) = to.first() else { continue };
                if t != f {
                    top.entry(f.clone()).or_default().insert(t.clone());
                }
            }
        }
        for comp in cycles(&top) {
            problems.push(format!(
                "{}: modules in a cycle: {}",
                c.name,
                comp.join(", ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle() {
    let mut g: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    g.entry("a").or_default().insert("b");
    g.entry("b").or_default().insert("c");
    g.entry("c").or_default().insert("a");
    g.entry("c").or_default().insert("d");
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    // And resolves the paths a file names to module files.
    let files: BTreeMap<ModPath, PathBuf> = [
        (vec![], PathBuf::from("lib.rs")),
        (vec!["x".to_string()], PathBuf::from("x/mod.rs")),
        (
            vec!["x".to_string(), "y".to_string()],
            PathBuf::from("x/y.rs"),
        ),
    ]
    .into_iter()
    .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        target(&files, &s(&["x", "y"]), &s(&["super", "Thing"])),
        Some(s(&["x"]))
    );
    assert_eq!(
        target(&files, &s(&["x"]), &s(&["y", "f"])),
        Some(s(&["x", "y"]))
    );
    assert_eq!(
        target(&files, &s(&["x", "y"]), &s(&["crate", "x", "y", "T"])),
        Some(s(&["x", "y"]))
    );
    assert_eq!(target(&files, &s(&["x", "y"]), &s(&["std", "fmt"])), None);
}
