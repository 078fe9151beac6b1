// Fuzz target: users/assign (qmail-newu's compiler and the line parser) and vpasswd lines.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/assign.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto in = qv::LineReader::from_text(text, "assign");
        qv::CdbCounter counter;
        qv::compile_assign(in, counter);
    } catch (const qv::Error&) {
    }
    for (std::size_t start = 0; start < text.size();) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(start, nl - start);
        // A line that parses formats back to itself, field for field.
        if (auto e = qv::parse_assign_line(line)) {
            auto again = qv::parse_assign_line(qv::format_assign_line(*e));
            if (!again || again->local != e->local || again->dir != e->dir || again->uid != e->uid) std::abort();
        }
        if (auto u = qv::parse_vpasswd_line(line)) {
            auto again = qv::parse_vpasswd_line(qv::format_vpasswd_line(*u));
            if (!again || again->name != u->name || again->quota != u->quota || again->gid_flags != u->gid_flags)
                std::abort();
        }
        start = nl + 1;
    }
    return 0;
}
