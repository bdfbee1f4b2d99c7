//! What is kept of a rejected import row: its cells, for the error file the bureau downloads to
//! fix its list, with no resident ID number in clear (PIPL arts. 6 and 51: the least that serves).
//! The bureau still has its own file and the row number; the error file shows the last four
//! characters, enough to tell the rows apart.

/// Characters left in clear at the end of a masked number.
const KEPT: usize = 4;

/// The shortest run of digits taken for a resident ID number wherever it stands: 15, a
/// first-generation number (an 18-character number is 17 digits and a check character).
const ID_LIKE_RUN: usize = 15;

/// Masks the cells of a rejected row in place: the whole resident ID cell (whatever it holds: a
/// wrong number is still someone's number, or nearly), and in every other cell any run of digits
/// long enough to be a number typed in the wrong column.
pub fn mask_cells(cells: &mut [String], id_column: Option<usize>) {
    for (index, cell) in cells.iter_mut().enumerate() {
        let masked = if Some(index) == id_column { mask_whole(cell) } else { mask_id_like_runs(cell) };
        if masked != *cell {
            *cell = masked;
        }
    }
}

/// `320102201305021234` → `**************1234`; a cell of four characters or fewer is all stars
/// (the mask every view of the number uses).
pub fn mask_whole(cell: &str) -> String {
    nol_pii::mask_last_four(cell)
}

fn is_digit(character: char) -> bool {
    character.is_ascii_digit() || ('０'..='９').contains(&character)
}

fn is_check_character(character: char) -> bool {
    is_digit(character) || matches!(character, 'X' | 'x' | 'Ｘ' | 'ｘ')
}

/// Masks every run of 15 or more digits (with a check character `X` at its end, if any) but its
/// last four characters; the rest of the cell is left as it was.
pub fn mask_id_like_runs(cell: &str) -> String {
    let characters: Vec<char> = cell.chars().collect();
    let mut out = String::with_capacity(cell.len());
    let mut index = 0;
    while index < characters.len() {
        if !is_digit(characters[index]) {
            out.push(characters[index]);
            index += 1;
            continue;
        }
        let start = index;
        while index < characters.len() && is_digit(characters[index]) {
            index += 1;
        }
        if index < characters.len() && is_check_character(characters[index]) {
            index += 1;
        }
        let run = &characters[start..index];
        if run.len() >= ID_LIKE_RUN {
            out.extend(std::iter::repeat_n('*', run.len() - KEPT));
            out.extend(&run[run.len() - KEPT..]);
        } else {
            out.extend(run);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMBER: &str = "32010220130502123X";

    #[test]
    fn the_id_cell_keeps_only_its_last_four_characters() {
        assert_eq!(mask_whole(NUMBER), "**************123X");
        assert_eq!(mask_whole(" 3.20102201305021E+17 "), "****************E+17");
        assert_eq!(mask_whole("123"), "***");
        assert_eq!(mask_whole("1234"), "****");
        assert_eq!(mask_whole(""), "");
    }

    #[test]
    fn a_number_in_another_column_is_masked_and_the_rest_kept() {
        assert_eq!(mask_id_like_runs(&format!("张三{NUMBER}")), "张三**************123X");
        assert_eq!(mask_id_like_runs("身份证 320102201305021 号"), "身份证 ***********5021 号");
        assert_eq!(mask_id_like_runs("３２０１０２２０１３０５０２１２３４"), "**************１２３４");
        // Dates, codes and phone numbers are shorter than any ID number and stay.
        assert_eq!(mask_id_like_runs("2013-05-02 3201020001 13912345678"), "2013-05-02 3201020001 13912345678");
    }

    #[test]
    fn only_the_id_column_is_masked_whole() {
        let mut cells = vec!["王小明".to_owned(), NUMBER.to_owned(), "3201020001".to_owned(), format!("备注{NUMBER}")];
        mask_cells(&mut cells, Some(1));
        assert_eq!(cells, ["王小明", "**************123X", "3201020001", "备注**************123X"]);
    }
}
