// Regular expressions for the policies that take them (vfilter rules, QREGEX envrules): PCRE2, always
// with limits, so that no pattern an administrator or a user stores can hang a delivery. A pattern
// that would backtrack without end (say "(a+)+$" against a long line of a's) stops at the limits and
// reports `limit_hit`, which callers treat as "no match".
//
// Patterns and subjects are UTF-8; subjects that are not valid UTF-8 are matched too (invalid bytes
// match nothing but themselves, PCRE2_MATCH_INVALID_UTF). Matching is unanchored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace qv {

// The limits every match runs under (pcre2_set_match_limit, _depth_limit, _heap_limit). A header
// line of a few kilobytes matched by an ordinary pattern stays far below them.
constexpr std::uint32_t kRegexMatchLimit = 100000;
constexpr std::uint32_t kRegexDepthLimit = 1000;
constexpr std::uint32_t kRegexHeapLimitKiB = 4096;

class Regex {
public:
    enum class Result { no_match, match, limit_hit };

    // Compiles `pattern` (JIT when the platform has it). Throws Error 65 naming the offset and
    // PCRE2's message, e.g. "invalid regular expression 'a(' at offset 2: missing closing parenthesis".
    explicit Regex(std::string_view pattern, bool caseless = true);
    ~Regex();
    Regex(Regex&&) noexcept;
    Regex& operator=(Regex&&) noexcept;

    // Not thread-safe: a Regex keeps its match data between calls.
    Result match(std::string_view subject) const;
    const std::string& pattern() const noexcept { return pattern_; }

private:
    struct Impl;
    std::string pattern_;
    std::unique_ptr<Impl> impl_;
};

const char* to_string(Regex::Result r) noexcept;  // "no match", "match", "limit hit"

}  // namespace qv
