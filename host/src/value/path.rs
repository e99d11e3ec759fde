//! Paths to a part of a value, rendered only when an error is reported.

use std::fmt::Write as _;

#[derive(Clone, Copy)]
pub(super) enum Seg<'a> {
    Root(&'a str),
    Field(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    pub(super) fn root(label: &'a str) -> Path<'a> {
        Path { parent: None, seg: Seg::Root(label) }
    }

    pub(super) fn field<'b>(&'b self, name: &'b str) -> Path<'b> {
        Path { parent: Some(self), seg: Seg::Field(name) }
    }

    pub(super) fn index(&self, i: usize) -> Path<'_> {
        Path { parent: Some(self), seg: Seg::Index(i) }
    }

    pub(super) fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Root(label) => out.push_str(label),
                Seg::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}
