//! Tables for people: a header row, then one row per item, each column as
//! wide as its widest cell in terminal columns ([`crate::display_width`]),
//! so Korean names line up with Latin ones.

use crate::display_width::{pad, width};

/// Rows of cells under a header. Cells are printed as given: escape text
/// from the network before ([`crate::sanitize::printable`]).
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Between two columns.
const GAP: &str = "  ";
/// Before each line, as the other indented output of `baro`.
const INDENT: &str = "  ";

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|title| title.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra ones are shown too.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The lines, each indented, without trailing spaces.
    pub fn lines(&self) -> Vec<String> {
        let columns = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (column, cell) in row.iter().enumerate() {
                widths[column] = widths[column].max(width(cell));
            }
        }
        std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| {
                let cells: Vec<String> = (0..columns)
                    .map(|column| pad(row.get(column).map_or("", String::as_str), widths[column]))
                    .collect();
                format!("{INDENT}{}", cells.join(GAP))
                    .trim_end()
                    .to_string()
            })
            .collect()
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_and_latin_cells_start_at_the_same_column() {
        let mut table = Table::new(&["NAME", "USER", "ORG UNIT"]);
        table.row(vec![
            "이준호".into(),
            "lee.junho".into(),
            "행정안전부/2과".into(),
        ]);
        table.row(vec![
            "relay.sejong".into(),
            "relay1".into(),
            "행정안전부".into(),
        ]);
        let lines = table.lines();
        assert_eq!(lines.len(), 3);
        let column_of =
            |line: &str, needle: &str| width(&line[..line.find(needle).expect("cell in line")]);
        assert_eq!(
            column_of(&lines[1], "lee.junho"),
            column_of(&lines[2], "relay1")
        );
        assert_eq!(
            column_of(&lines[0], "USER"),
            column_of(&lines[1], "lee.junho")
        );
        assert_eq!(
            column_of(&lines[1], "행정안전부/2과"),
            column_of(&lines[2], "행정안전부")
        );
        assert!(lines.iter().all(|line| !line.ends_with(' ')));
    }

    #[test]
    fn a_short_row_is_padded_with_empty_cells() {
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["가".into()]);
        assert_eq!(table.to_string(), "  A   B\n  가");
    }
}
