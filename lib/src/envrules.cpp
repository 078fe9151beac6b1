#include "qvmail/envrules.hpp"

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/regex.hpp"

namespace qv {

namespace {

constexpr std::size_t npos = std::string_view::npos;

// Matches the element of `pat` at `p` (not '*') against `c`; `next` is where the next element starts.
bool element(std::string_view pat, std::size_t p, unsigned char c, std::size_t& next) {
    const std::size_t n = pat.size();
    switch (pat[p]) {
        case '?':
            next = p + 1;
            return true;
        case '\\':
            if (p + 1 >= n) {
                next = n;
                return false;
            }
            next = p + 2;
            return static_cast<unsigned char>(pat[p + 1]) == c;
        case '[': {
            std::size_t q = p;
            bool reverse = q + 1 < n && pat[q + 1] == '^';
            if (reverse) ++q;
            bool matched = false;
            if (q + 1 < n && (pat[q + 1] == ']' || pat[q + 1] == '-')) {  // a ']' or '-' first is a member
                ++q;
                matched = static_cast<unsigned char>(pat[q]) == c;
            }
            unsigned char last = static_cast<unsigned char>(pat[q]);
            for (++q; q < n && pat[q] != ']'; last = static_cast<unsigned char>(pat[q]), ++q) {
                if (pat[q] == '-' && q + 1 < n && pat[q + 1] != ']') {
                    ++q;
                    if (c <= static_cast<unsigned char>(pat[q]) && c >= last) matched = true;
                } else if (static_cast<unsigned char>(pat[q]) == c) {
                    matched = true;
                }
            }
            if (q >= n) {  // unclosed
                next = n;
                return false;
            }
            next = q + 1;
            return matched != reverse;
        }
        default:
            next = p + 1;
            return static_cast<unsigned char>(pat[p]) == c;
    }
}

// Where a wildmat pattern goes wrong (a lone '\' at the end, a '[' without its ']'), or npos.
std::size_t malformed_at(std::string_view pat) noexcept {
    const std::size_t n = pat.size();
    for (std::size_t p = 0; p < n; ++p) {
        if (pat[p] == '\\') {
            if (p + 1 == n) return p;
            ++p;
        } else if (pat[p] == '[') {
            std::size_t q = p;
            if (q + 1 < n && pat[q + 1] == '^') ++q;
            if (q + 1 < n && (pat[q + 1] == ']' || pat[q + 1] == '-')) ++q;
            for (++q; q < n && pat[q] != ']'; ++q) {
            }
            if (q >= n) return p;
            p = q;
        }
    }
    return npos;
}

bool is_name_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}

void check_name(std::string_view name) {
    bool ok = !name.empty() && is_name_start(name[0]);
    for (char c : name) ok = ok && is_name_char(c);
    if (!ok) throw Error(Exit::dataerr, "'" + printable(name) + "' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
}

// Checks a pattern; a regular expression comes back compiled.
std::shared_ptr<const Regex> check_pattern(std::string_view pattern, PatternKind kind) {
    if (kind == PatternKind::regex) {
        try {
            return std::make_shared<const Regex>(pattern);
        } catch (const Error& e) {
            throw Error(Exit::dataerr, std::string("the pattern: ") + e.what());
        }
    }
    if (auto why = wildmat_problem(pattern))
        throw Error(Exit::dataerr, "the pattern '" + printable(pattern) + "': " + *why);
    return nullptr;
}

}  // namespace

bool wildmat(std::string_view pat, std::string_view text) noexcept {
    if (malformed_at(pat) != npos) return false;
    const std::size_t n = pat.size();
    std::size_t t = 0, p = 0, star_p = npos, star_t = 0;
    while (t < text.size()) {
        if (p < n && pat[p] == '*') {
            while (p < n && pat[p] == '*') ++p;
            if (p == n) return true;  // a trailing star takes the rest
            star_p = p;
            star_t = t;
            continue;
        }
        std::size_t next = p;
        if (p < n && element(pat, p, static_cast<unsigned char>(text[t]), next)) {
            p = next;
            ++t;
            continue;
        }
        if (star_p == npos) return false;
        p = star_p;  // let the last star take one more character
        t = ++star_t;
    }
    while (p < n && pat[p] == '*') ++p;
    return p == n;
}

std::optional<std::string> wildmat_problem(std::string_view pat) {
    std::size_t at = malformed_at(pat);
    if (at == npos) return std::nullopt;
    if (pat[at] == '\\') return "a lone '\\' at the end";
    return "'[' at " + std::to_string(at + 1) + " is not closed by ']'";
}

const char* to_string(PatternKind k) noexcept {
    return k == PatternKind::regex ? "regex (QREGEX)" : "wildmat";
}

EnvAssignment parse_assignment(std::string_view item) {
    std::size_t eq = item.find('=');
    if (eq == npos) throw Error(Exit::dataerr, "'" + printable(item) + "' is not VAR=VALUE (VAR= unsets VAR)");
    EnvAssignment a;
    a.name = std::string(item.substr(0, eq));
    check_name(a.name);
    if (eq + 1 < item.size()) a.value = std::string(item.substr(eq + 1));
    return a;
}

EnvRule parse_envrule(std::string_view line, PatternKind kind) {
    EnvRule r;
    r.text = std::string(line);
    std::size_t colon = line.find(':');
    if (colon == npos) throw Error(Exit::dataerr, "no ':' between the pattern and the variables");
    r.pattern = std::string(line.substr(0, colon));
    r.regex = check_pattern(r.pattern, kind);
    // items separated by ',', where "\," is a comma inside a value (the backslash goes)
    std::string item;
    auto finish = [&] {
        std::size_t b = 0;
        while (b < item.size() && (item[b] == ' ' || item[b] == '\t')) ++b;
        if (b < item.size()) r.env.push_back(parse_assignment(std::string_view(item).substr(b)));
        item.clear();
    };
    for (char c : line.substr(colon + 1)) {
        if (c == ',' && !item.empty() && item.back() == '\\') {
            item.back() = ',';
        } else if (c == ',') {
            finish();
        } else {
            item += c;
        }
    }
    finish();
    if (r.env.empty()) throw Error(Exit::dataerr, "the rule sets no variable");
    return r;
}

std::string format_envrule(std::string_view pattern, const std::vector<EnvAssignment>& env) {
    if (pattern.find_first_of(std::string_view(":\n\r\0", 4)) != npos)
        throw Error(Exit::dataerr, "the pattern '" + printable(pattern) + "' cannot hold ':' or a line end");
    if (!pattern.empty() && pattern[0] == '#')
        throw Error(Exit::dataerr, "a pattern cannot start with '#': the line would be a comment");
    if (env.empty()) throw Error(Exit::dataerr, "the rule sets no variable");
    std::string line(pattern);
    line += ':';
    for (std::size_t i = 0; i < env.size(); ++i) {
        const EnvAssignment& a = env[i];
        check_name(a.name);
        line += (i ? "," : "") + a.name + "=";
        if (!a.value || a.value->empty()) continue;  // VAR= unsets
        const std::string& v = *a.value;
        if (v.find_first_of(std::string_view("\n\r\0", 3)) != npos)
            throw Error(Exit::dataerr, a.name + ": a value cannot hold a line end");
        if (v.back() == '\\' || v.back() == ' ' || v.back() == '\t')
            throw Error(Exit::dataerr, a.name + "=" + printable(v) +
                                           ": a value cannot end with '\\' or a blank (the file could not hold it)");
        for (char c : v) line += c == ',' ? std::string("\\,") : std::string(1, c);
    }
    return line;
}

std::vector<EnvRule> load_envrules(const std::filesystem::path& file, PatternKind kind,
                                   std::vector<std::string>* problems) {
    std::vector<EnvRule> out;
    if (!path_exists(file)) return out;
    LineReader in(file);
    std::string_view line;
    while (in.next(line)) {
        std::string_view entry = control_entry(line);  // trailing blanks go, as control_readfile drops them
        if (entry.empty()) continue;
        try {
            EnvRule r = parse_envrule(entry, kind);
            r.line = in.line_number();
            out.push_back(std::move(r));
        } catch (const Error& e) {
            ParseError bad(file, in.line_number(), e.what(), std::string(entry));
            if (!problems) throw bad;
            problems->push_back(bad.what());
        }
    }
    return out;
}

bool envrule_matches(const EnvRule& rule, std::string_view address, PatternKind kind) {
    if (address.empty() && (rule.pattern.empty() || rule.pattern == "<>")) return true;
    if (kind == PatternKind::wildmat) return wildmat(rule.pattern, address);
    if (rule.regex) return rule.regex->match(address) == Regex::Result::match;
    try {
        return Regex(rule.pattern).match(address) == Regex::Result::match;
    } catch (const Error&) {
        return false;  // does not compile: never a match
    }
}

std::vector<EnvChange> apply_envrules(const std::vector<EnvRule>& rules, std::string_view address, PatternKind kind,
                                      std::map<std::string, std::string>& env) {
    std::vector<EnvChange> changes;
    for (const EnvRule& r : rules) {
        if (!envrule_matches(r, address, kind)) continue;
        for (const EnvAssignment& a : r.env) {
            if (a.value)
                env[a.name] = *a.value;
            else
                env.erase(a.name);
            changes.push_back(EnvChange{&r, a});
        }
    }
    return changes;
}

}  // namespace qv
