#include "qvmail/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "qvmail/error.hpp"

namespace qv {

struct Regex::Impl {
    pcre2_code* code = nullptr;
    pcre2_match_data* data = nullptr;
    pcre2_match_context* context = nullptr;
    bool jit = false;
    ~Impl() {
        pcre2_match_context_free(context);
        pcre2_match_data_free(data);
        pcre2_code_free(code);
    }
};

Regex::Regex(std::string_view pattern, bool caseless) : pattern_(pattern), impl_(std::make_unique<Impl>()) {
    std::uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;
    if (caseless) options |= PCRE2_CASELESS;
    int err = 0;
    PCRE2_SIZE offset = 0;
    impl_->code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &offset, nullptr);
    if (!impl_->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw Error(Exit::dataerr, "invalid regular expression '" + printable(pattern) + "' at offset " +
                                       std::to_string(offset) + ": " + reinterpret_cast<const char*>(msg));
    }
    impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
    impl_->data = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
    impl_->context = pcre2_match_context_create(nullptr);
    if (!impl_->data || !impl_->context) throw Error(Exit::software, "out of memory compiling a regular expression");
    pcre2_set_match_limit(impl_->context, kRegexMatchLimit);
    pcre2_set_depth_limit(impl_->context, kRegexDepthLimit);
    pcre2_set_heap_limit(impl_->context, kRegexHeapLimitKiB);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

Regex::Result Regex::match(std::string_view subject) const {
    int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, impl_->data,
                         impl_->context);
    if (rc >= 0) return Result::match;
    // Anything else (the limits, the JIT stack, and errors that a compiled pattern on a bounded subject
    // cannot otherwise produce) is no match: a filter must never fail a delivery.
    return rc == PCRE2_ERROR_NOMATCH ? Result::no_match : Result::limit_hit;
}

const char* to_string(Regex::Result r) noexcept {
    switch (r) {
        case Regex::Result::match:
            return "match";
        case Regex::Result::limit_hit:
            return "limit hit";
        case Regex::Result::no_match:
            break;
    }
    return "no match";
}

}  // namespace qv
