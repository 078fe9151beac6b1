// Fuzz target: the tcprules parser and range expansion, with consistency checks on what it accepts.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_input.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/tcprules.hpp"

namespace {

// Every accepted line must encode to a value that decodes back to what the line said.
void check_line(std::string_view line) {
    std::string value;
    auto p = qv::tcprules::parse_line(line, value);
    if (p.kind != qv::tcprules::LineKind::rule || !p.error.empty()) return;
    // Without NUL bytes in the line, the value decodes back to what the line said: deny or not,
    // one item per variable. (A NUL inside a name or value legitimately splits an item, as tcpserver
    // would read it.)
    if (line.find('\0') == std::string_view::npos) {
        auto d = qv::tcprules::decode(value);
        if (d.deny != p.deny) std::abort();
        std::size_t items = 0;
        for (char c : value) items += c == '\0';
        if (items != d.env.size() + (p.deny ? 1 : 0)) std::abort();
    }
    std::size_t keys = 0;
    qv::tcprules::expand_address(p.address, [&](std::string_view) { ++keys; });
    if (keys > 256) std::abort();  // a range never yields more than 256 keys
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static qvfuzz::MemFile file;
    file.set(data, size);
    std::string_view text(reinterpret_cast<const char*>(data), size);
    for (std::size_t start = 0; start <= text.size();) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        check_line(text.substr(start, nl - start));
        start = nl + 1;
    }
    try {
        qv::LineReader in(file.fd(), "fuzz");
        qv::CdbCounter counter;
        qv::tcprules::compile(in, counter);
    } catch (const qv::Error&) {
        // a rejected file is a fine outcome
    }
    return 0;
}
