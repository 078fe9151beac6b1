// ASCII case folding, as qmail compares domains, keys and addresses (never the locale's rules).
#pragma once

#include <string>
#include <string_view>

namespace qv {

constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline void ascii_lower_in_place(std::string& s) noexcept {
    for (char& c : s) c = ascii_lower(c);
}

inline std::string ascii_lower(std::string_view s) {
    std::string out(s);
    ascii_lower_in_place(out);
    return out;
}

inline bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

}  // namespace qv
