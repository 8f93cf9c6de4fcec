//! The Zengin character set (`C` fields, /work/shared/ZENGIN.md "Character rules"): half-width
//! JIS X 0201 katakana (U+FF66 ｦ to U+FF9F ﾟ, which Shift_JIS writes as the single bytes
//! 0xA6–0xDF), upper-case Latin letters, digits, space and `( ) - . / ,`.
//!
//! [`to_zengin`] is the one way a name enters a file: full-width katakana (and hiragana,
//! full-width letters, digits, space and those symbols) become their half-width forms, a voiced
//! kana two characters (ガ → ｶﾞ); a character with no half-width form (漢字, ヰ, ヶ, a lower-case
//! letter) is refused, naming its position, never replaced. Tried by `zengin::kana::tests`.

/// Full-width katakana with a single half-width form, paired by position with [`HALF`].
const FULL: &str = "ァアィイゥウェエォオカキクケコサシスセソタチッツテトナニヌネノハヒフヘホマミムメモャヤュユョヨラリルレロワヲンー゛゜";
const HALF: &str = "ｧｱｨｲｩｳｪｴｫｵｶｷｸｹｺｻｼｽｾｿﾀﾁｯﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓｬﾔｭﾕｮﾖﾗﾘﾙﾚﾛﾜｦﾝｰﾞﾟ";
/// Voiced (濁音) katakana: the half-width base, then ﾞ.
const VOICED: &str = "ガギグゲゴザジズゼゾダヂヅデドバビブベボヴ";
const VOICED_BASE: &str = "ｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾊﾋﾌﾍﾎｳ";
/// Semi-voiced (半濁音) katakana: the half-width base, then ﾟ.
const SEMI: &str = "パピプペポ";
const SEMI_BASE: &str = "ﾊﾋﾌﾍﾎ";

/// The symbols a `C` field may hold besides letters, digits, space and katakana.
const SYMBOLS: &str = "()-./,";

/// A character that cannot be written in a `C` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KanaError {
    /// 1-based position of the character in the text as given.
    pub position: usize,
    pub character: char,
}

impl std::fmt::Display for KanaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "character {} ({:?}) has no half-width form in the Zengin character set \
             (half-width katakana, upper-case A-Z, 0-9, space and ( ) - . / ,)",
            self.position, self.character
        )
    }
}

/// Whether `c` may stand in a `C` field as it is.
pub fn is_zengin(c: char) -> bool {
    matches!(c, 'A'..='Z' | '0'..='9' | ' ' | '\u{FF66}'..='\u{FF9F}') || SYMBOLS.contains(c)
}

fn nth(s: &str, i: usize) -> Option<char> {
    s.chars().nth(i)
}

fn position_in(s: &str, c: char) -> Option<usize> {
    s.chars().position(|x| x == c)
}

/// `text` in the Zengin character set, full-width forms made half-width (see the module docs).
pub fn to_zengin(text: &str) -> Result<String, KanaError> {
    let mut out = String::with_capacity(text.len());
    for (i, given) in text.chars().enumerate() {
        let refuse = || KanaError {
            position: i + 1,
            character: given,
        };
        // Hiragana are the katakana 0x60 below: same sound, same half-width form.
        let c = match given {
            '\u{3041}'..='\u{3096}' => {
                char::from_u32(u32::from(given) + 0x60).ok_or_else(refuse)?
            }
            '\u{3000}' => ' ',
            // Full-width ASCII (Ａ, １, （) is ASCII 0xFEE0 above.
            '\u{FF01}'..='\u{FF5E}' => {
                char::from_u32(u32::from(given) - 0xFEE0).ok_or_else(refuse)?
            }
            '\u{2010}' | '\u{2212}' => '-',
            other => other,
        };
        if is_zengin(c) {
            out.push(c);
        } else if let Some(half) = position_in(FULL, c).and_then(|p| nth(HALF, p)) {
            out.push(half);
        } else if let Some(base) = position_in(VOICED, c).and_then(|p| nth(VOICED_BASE, p)) {
            out.push(base);
            out.push('ﾞ');
        } else if let Some(base) = position_in(SEMI, c).and_then(|p| nth(SEMI_BASE, p)) {
            out.push(base);
            out.push('ﾟ');
        } else {
            return Err(refuse());
        }
    }
    Ok(out)
}

/// The first character of `text` outside the Zengin set, as it stands (no conversion): what a
/// field read from a file is checked with.
pub fn check_zengin(text: &str) -> Result<(), KanaError> {
    match text.chars().enumerate().find(|(_, c)| !is_zengin(*c)) {
        Some((i, c)) => Err(KanaError {
            position: i + 1,
            character: c,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_pair_up() {
        assert_eq!(FULL.chars().count(), HALF.chars().count());
        assert_eq!(VOICED.chars().count(), VOICED_BASE.chars().count());
        assert_eq!(SEMI.chars().count(), SEMI_BASE.chars().count());
        assert!(HALF.chars().all(is_zengin));
    }

    #[test]
    fn full_width_becomes_half_width() {
        assert_eq!(to_zengin("ヤマダ　タロウ").unwrap(), "ﾔﾏﾀﾞ ﾀﾛｳ");
        assert_eq!(to_zengin("パピプペポ ヴ").unwrap(), "ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ ｳﾞ");
        assert_eq!(to_zengin("ｶ)ｻｸﾗﾗｯﾌﾟ").unwrap(), "ｶ)ｻｸﾗﾗｯﾌﾟ");
        assert_eq!(
            to_zengin("カ（サクラ－ＡＢＣ１２３").unwrap(),
            "ｶ(ｻｸﾗ-ABC123"
        );
        assert_eq!(to_zengin("すずき　はなこ").unwrap(), "ｽｽﾞｷ ﾊﾅｺ");
        assert_eq!(to_zengin("ヨシダ ー").unwrap(), "ﾖｼﾀﾞ ｰ");
    }

    #[test]
    fn characters_without_a_half_width_form_are_refused_by_position() {
        let e = to_zengin("ヤマダ太郎").unwrap_err();
        assert_eq!((e.position, e.character), (4, '太'));
        assert_eq!(to_zengin("ヰ").unwrap_err().character, 'ヰ');
        assert_eq!(to_zengin("ヶ").unwrap_err().character, 'ヶ');
        // Lower case is another letter, not another form of the same one.
        assert_eq!(to_zengin("Yamada").unwrap_err().position, 2);
        assert_eq!(to_zengin("A_B").unwrap_err().character, '_');
        assert!(to_zengin("ｱ｢").is_err());
    }

    #[test]
    fn a_field_read_back_is_checked_as_it_stands() {
        assert!(check_zengin("ﾔﾏﾀﾞ ﾀﾛｳ").is_ok());
        let e = check_zengin("ﾔﾏﾀﾞ ﾀﾛウ").unwrap_err();
        assert_eq!(e.position, 8);
    }
}
