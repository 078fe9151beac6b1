// Fuzz target: the wildmat matcher. The first line is the pattern, the rest the text. Property: for
// well-formed patterns the answer is that of a plain dynamic-programming matcher written here
// independently (pattern position x text position), so the quick backtracking one misses no match and
// invents none; a malformed pattern matches nothing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "qvmail/envrules.hpp"

namespace {

// One element of a pattern: a star, or a test of one character.
struct Element {
    bool star = false;
    bool any = false;  // '?'
    bool negate = false;
    std::vector<std::pair<unsigned char, unsigned char>> ranges;  // a literal is the range c-c
};

std::vector<Element> elements(std::string_view p) {
    std::vector<Element> out;
    for (std::size_t i = 0; i < p.size(); ++i) {
        Element e;
        unsigned char c = static_cast<unsigned char>(p[i]);
        if (c == '*') {
            e.star = true;
        } else if (c == '?') {
            e.any = true;
        } else if (c == '\\') {
            ++i;
            e.ranges.push_back({static_cast<unsigned char>(p[i]), static_cast<unsigned char>(p[i])});
        } else if (c == '[') {
            std::size_t j = i + 1;
            if (p[j] == '^') {
                e.negate = true;
                ++j;
            }
            unsigned char last = static_cast<unsigned char>(p[j - 1]);
            if (p[j] == ']' || p[j] == '-') {  // a first ']' or '-' is a member
                last = static_cast<unsigned char>(p[j]);
                e.ranges.push_back({last, last});
                ++j;
            }
            for (; p[j] != ']'; ++j) {
                unsigned char x = static_cast<unsigned char>(p[j]);
                if (x == '-' && p[j + 1] != ']') {
                    unsigned char hi = static_cast<unsigned char>(p[++j]);
                    e.ranges.push_back({last, hi});
                    last = hi;
                } else {
                    e.ranges.push_back({x, x});
                    last = x;
                }
            }
            i = j;
        } else {
            e.ranges.push_back({c, c});
        }
        out.push_back(e);
    }
    return out;
}

bool accepts(const Element& e, unsigned char c) {
    if (e.any) return true;
    bool in = false;
    for (auto& [lo, hi] : e.ranges) in = in || (c >= lo && c <= hi);
    return in != e.negate;
}

bool reference(std::string_view pattern, std::string_view text) {
    auto el = elements(pattern);
    std::size_t n = el.size(), m = text.size();
    // ok[i][j]: el[i..] matches text[j..]
    std::vector<std::vector<char>> ok(n + 1, std::vector<char>(m + 1, 0));
    ok[n][m] = 1;
    for (std::size_t i = n; i-- > 0;)
        for (std::size_t j = m + 1; j-- > 0;) {
            if (el[i].star)
                ok[i][j] = ok[i + 1][j] || (j < m && ok[i][j + 1]);
            else
                ok[i][j] = j < m && accepts(el[i], static_cast<unsigned char>(text[j])) && ok[i + 1][j + 1];
        }
    return ok[0][0];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::size_t nl = in.find('\n');
    std::string_view pattern = in.substr(0, nl), text = nl == std::string_view::npos ? "" : in.substr(nl + 1);
    bool got = qv::wildmat(pattern, text);
    if (qv::wildmat_problem(pattern)) {
        if (got) std::abort();
        return 0;
    }
    if (pattern.size() * text.size() <= 1 << 20 && got != reference(pattern, text)) std::abort();
    return 0;
}
