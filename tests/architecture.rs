//! The house rules of ARCHITECTURE.md, checked on the source: the import graph between `src/`
//! files has no cycle and no arrow from a lower layer to a higher one, no function is over 100
//! lines, no file over 800 lines (test code aside), and `src/app/mod.rs` stays short.
//!
//! The source is parsed with `syn`; an import is any path that starts at `crate::`, `super::`,
//! `edgetune::` (the binary), or at a name a `use` brought in. Test code (`#[cfg(test)]` modules,
//! `#[test]` functions and files only a `#[cfg(test)] mod` declares) is left out: a test may
//! reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// Layers, bottom first: a file may import its own layer and the layers below it. The
/// longest prefix that matches a module path names its layer.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "model of the world",
        &[
            "units",
            "opt",
            "files",
            "space",
            "catalog",
            "landscape",
            "twin",
            "device",
        ],
    ),
    (
        "workloads and the protocol",
        &["workload", "emulator", "measure"],
    ),
    ("backends", &["backend"]),
    ("search", &["strategy", "objective"]),
    ("the loop", &["study"]),
    ("exit codes", &["error"]),
    ("rendering", &["report", "bench", "fleet_bench"]),
    ("commands", &["app"]),
    (
        "binary",
        &["lib", "main", "cli", "bounds", "recorded", "options"],
    ),
];

const MAX_FN_LINES: usize = 100;
const MAX_FILE_LINES: usize = 800;
const MAX_APP_MOD_LINES: usize = 150;

/// One source file, kept under its module path (`backend::jetson::sysfs`): whether only tests
/// compile it, the modules it imports, and its long functions.
struct Source {
    test_only: bool,
    imports: BTreeSet<Vec<String>>,
    long_fns: Vec<(String, usize)>,
    lines_outside_tests: usize,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_attr(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let p = a.path();
        if p.is_ident("test") {
            return true;
        }
        match (p.is_ident("cfg"), &a.meta) {
            (true, syn::Meta::List(l)) => {
                let text = l.tokens.to_string();
                text.contains("test") && !text.contains("not")
            }
            _ => false,
        }
    })
}

/// Collects the paths a file uses and its long functions, skipping test code.
struct Walker<'a> {
    /// The module being walked: the file's, then an inline module's inside it.
    module: Vec<String>,
    /// Every module that is a file, to tell a child module's path from an outside crate's.
    modules: &'a BTreeSet<Vec<String>>,
    binary: bool,
    /// Names a `use` brought in, to the module path they stand for.
    aliases: BTreeMap<String, Vec<String>>,
    paths: Vec<Vec<String>>,
    long_fns: Vec<(String, usize)>,
    test_lines: usize,
}

impl Walker<'_> {
    /// The absolute path (in the library's module tree) a path of this file stands for, if it
    /// points into the crate.
    fn resolve(&self, segs: &[String]) -> Option<Vec<String>> {
        let first = segs.first()?;
        let rest = &segs[1..];
        match first.as_str() {
            "crate" if !self.binary => Some(rest.to_vec()),
            "crate" => Some([vec!["bin".to_string()], rest.to_vec()].concat()),
            "edgetune" => Some(rest.to_vec()),
            "super" | "self" => {
                let mut base = self.module.to_vec();
                let mut rest = segs;
                while let Some(s) = rest.first() {
                    match s.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
                Some([base, rest.to_vec()].concat())
            }
            name => match self.aliases.get(name) {
                Some(base) => Some([base.clone(), rest.to_vec()].concat()),
                // A path through a child module (`mod rails;` then `rails::Rails`).
                None => {
                    let child = [self.module.to_vec(), vec![name.to_string()]].concat();
                    self.modules
                        .contains(&child)
                        .then(|| [child, rest.to_vec()].concat())
                }
            },
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_name(prefix, &n.ident.to_string(), None),
            syn::UseTree::Rename(r) => {
                self.use_name(prefix, &r.ident.to_string(), Some(r.rename.to_string()))
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn use_name(&mut self, prefix: &[String], name: &str, rename: Option<String>) {
        let full: Vec<String> = if name == "self" {
            prefix.to_vec()
        } else {
            [prefix.to_vec(), vec![name.to_string()]].concat()
        };
        if let Some(abs) = self.resolve(&full) {
            let alias = rename.unwrap_or_else(|| full.last().cloned().unwrap_or_default());
            self.aliases.insert(alias, abs.clone());
            self.paths.push(abs);
        }
    }

    fn record(&mut self, segs: Vec<String>) {
        if let Some(abs) = self.resolve(&segs) {
            self.paths.push(abs);
        }
    }

    fn check_fn(&mut self, name: String, span: proc_macro2::Span) {
        let lines = span.end().line - span.start().line + 1;
        if lines > MAX_FN_LINES {
            self.long_fns.push((name, lines));
        }
    }

    fn skip(&mut self, span: proc_macro2::Span) {
        self.test_lines += span.end().line - span.start().line + 1;
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_test_attr(&m.attrs) {
            self.skip(m.span());
            return;
        }
        // `super::` inside an inline module means the module of its file.
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_test_attr(&f.attrs) {
            self.skip(f.span());
            return;
        }
        self.check_fn(f.sig.ident.to_string(), f.span());
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test_attr(&f.attrs) {
            self.skip(f.span());
            return;
        }
        self.check_fn(f.sig.ident.to_string(), f.span());
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.check_fn(f.sig.ident.to_string(), f.span());
        }
        syn::visit::visit_trait_item_fn(self, f);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if is_test_attr(&i.attrs) {
            self.skip(i.span());
            return;
        }
        syn::visit::visit_item_impl(self, i);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_test_attr(&u.attrs) {
            return;
        }
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segs.len() > 1 {
            self.record(segs);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // Paths inside macro calls (format!, assert!, vec!) are tokens; parse what parses.
        if let Ok(args) = m.parse_body_with(
            syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
        ) {
            for e in &args {
                self.visit_expr(e);
            }
        }
        syn::visit::visit_macro(self, m);
    }
}

fn test_only_children(file: &syn::File) -> BTreeSet<String> {
    file.items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) if m.content.is_none() && is_test_attr(&m.attrs) => {
                Some(m.ident.to_string())
            }
            _ => None,
        })
        .collect()
}

/// The files of the binary crate (beside `main.rs`); their modules are kept under `bin`.
const BINARY_FILES: [&str; 5] = ["main", "cli", "bounds", "recorded", "options"];

/// The module path of a file under `src/`: `lib.rs` is the root, the binary's files are under
/// `bin`.
fn module_path(rel: &Path) -> Vec<String> {
    let m = module_of(rel);
    match m[0].as_str() {
        "lib" => Vec::new(),
        "main" => vec!["bin".to_string()],
        f if BINARY_FILES.contains(&f) => [vec!["bin".to_string()], m].concat(),
        _ => m,
    }
}

fn sources() -> BTreeMap<Vec<String>, Source> {
    let root = src_dir();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|path| module_path(path.strip_prefix(&root).unwrap()))
        .collect();
    let mut out = BTreeMap::new();
    let mut test_mods: BTreeSet<Vec<String>> = BTreeSet::new();
    for path in &files {
        let module = module_path(path.strip_prefix(&root).unwrap());
        let text = std::fs::read_to_string(path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for child in test_only_children(&file) {
            test_mods.insert([module.clone(), vec![child]].concat());
        }
        let mut w = Walker {
            module: module.clone(),
            modules: &modules,
            binary: module.first().is_some_and(|m| m == "bin"),
            aliases: BTreeMap::new(),
            paths: Vec::new(),
            long_fns: Vec::new(),
            test_lines: 0,
        };
        // `use` items first, so that later paths through their names resolve.
        for item in &file.items {
            if let syn::Item::Use(u) = item {
                w.visit_item_use(u);
            }
        }
        w.visit_file(&file);
        out.insert(
            module,
            Source {
                test_only: false,
                imports: w.paths.into_iter().collect(),
                long_fns: w.long_fns,
                lines_outside_tests: text.lines().count().saturating_sub(w.test_lines),
            },
        );
    }
    for (m, s) in out.iter_mut() {
        s.test_only = test_mods.iter().any(|t| m.starts_with(t));
    }
    out
}

/// The file a path lands in: the longest module prefix that is a file.
fn file_of<'a>(files: &'a BTreeMap<Vec<String>, Source>, path: &[String]) -> Option<&'a [String]> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get_key_value(&path[..n]).map(|(k, _)| k.as_slice()))
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "lib".to_string()
    } else {
        m.join("::")
    }
}

fn layer_of(m: &[String]) -> (usize, &'static str) {
    let path = match m.first().map(String::as_str) {
        None => "lib".to_string(),
        Some("bin") => m.get(1).cloned().unwrap_or_else(|| "main".to_string()),
        Some(_) => name(m),
    };
    let matches = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}::"));
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (n, mods))| mods.iter().map(move |p| (i, *n, *p)))
        .filter(|(_, _, p)| matches(p))
        .max_by_key(|(_, _, p)| p.len())
        .map(|(i, n, _)| (i, n))
        .unwrap_or_else(|| panic!("module {} has no layer in LAYERS", name(m)))
}

/// Edges between files (test code left out), a file's own module and its parents' `mod`
/// declarations aside.
fn graph(files: &BTreeMap<Vec<String>, Source>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut g = BTreeMap::new();
    for (m, s) in files.iter().filter(|(_, s)| !s.test_only) {
        let targets: BTreeSet<Vec<String>> = s
            .imports
            .iter()
            .filter_map(|p| file_of(files, p))
            .filter(|t| *t != m.as_slice() && !files[*t].test_only)
            // `lib.rs` and `main.rs` only declare modules.
            .filter(|t| !t.is_empty() && *t != ["bin"])
            .map(|t| t.to_vec())
            .collect();
        g.insert(m.clone(), targets);
    }
    g
}

#[test]
fn layers_point_down() {
    let files = sources();
    let mut wrong = Vec::new();
    for (from, tos) in graph(&files) {
        let (lf, nf) = layer_of(&from);
        for to in tos {
            let (lt, nt) = layer_of(&to);
            if lt > lf {
                wrong.push(format!("{} ({nf}) -> {} ({nt})", name(&from), name(&to)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports from a lower layer to a higher one:\n{}",
        wrong.join("\n")
    );
}

/// Tarjan's strongly connected components; a component of more than one file is a cycle.
fn cycles(g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct T<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a [String], usize>,
        low: BTreeMap<&'a [String], usize>,
        stack: Vec<&'a [String]>,
        on: BTreeSet<&'a [String]>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn strong<'a>(t: &mut T<'a>, v: &'a [String]) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_slice();
            if !t.g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                strong(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_vec());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_slice()) {
            strong(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_import_graph_has_no_cycle() {
    let files = sources();
    let g = graph(&files);
    let found: Vec<String> = cycles(&g)
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|m| name(m)).collect();
            names.sort();
            names.join(", ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "files that import each other (directly or round a cycle):\n{}\n(a leaf file of the shared types, which the rest import and the parent re-exports, breaks one: see strategy/base.rs)",
        found.join("\n")
    );
}

#[test]
fn functions_and_files_stay_short() {
    let files = sources();
    let mut long = Vec::new();
    for (m, s) in files.iter().filter(|(_, s)| !s.test_only) {
        for (f, n) in &s.long_fns {
            long.push(format!("{}::{f}: {n} lines", name(m)));
        }
        if s.lines_outside_tests > MAX_FILE_LINES {
            long.push(format!(
                "{}: {} lines outside tests",
                name(m),
                s.lines_outside_tests
            ));
        }
    }
    let app = std::fs::read_to_string(src_dir().join("app/mod.rs")).unwrap();
    if app.lines().count() >= MAX_APP_MOD_LINES {
        long.push(format!("app/mod.rs: {} lines", app.lines().count()));
    }
    assert!(long.is_empty(), "too long:\n{}", long.join("\n"));
}

/// The checker itself: a path through a `use` alias and `super::` resolve to their files.
#[test]
fn the_checker_sees_imports() {
    let files = sources();
    let g = graph(&files);
    let s = |x: &str| x.split("::").map(String::from).collect::<Vec<_>>();
    assert!(g[&s("measure::protocol")].iter().any(|t| t == &s("device")));
    assert!(g[&s("app::tune")].contains(&s("study")));
    // `super::` from a child, and a path through a child module.
    assert!(g[&s("backend::jetson::snapshot")].contains(&s("backend::jetson::discover")));
    assert!(g[&s("backend::jetson")].contains(&s("backend::jetson::snapshot")));
}
