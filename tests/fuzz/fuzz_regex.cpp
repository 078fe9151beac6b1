// Fuzz target: the regular expressions of vfilter rules (and QREGEX envrules). The first line is the
// pattern, the rest the subject. Properties: a pattern either compiles or throws qv::Error; a match
// always ends (the limits; libFuzzer's -timeout catches a hang) with a result, caseless or not.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/error.hpp"
#include "qvmail/regex.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::size_t nl = text.find('\n');
    std::string_view pattern = text.substr(0, nl), subject = nl == std::string_view::npos ? "" : text.substr(nl + 1);
    for (bool caseless : {true, false}) {
        try {
            qv::Regex re(pattern, caseless);
            auto r = re.match(subject);
            if (re.match(subject) != r) std::abort();  // the same answer again
        } catch (const qv::Error&) {
        }
    }
    return 0;
}
