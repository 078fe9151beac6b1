// Fuzz target: what vfilter reads of a message, and the files store's rules file. The input is parsed as
// a message and run through a fixed set of rules (every comparison); then as a rules file. Properties:
// the parser never fails; every field names a part that was read; a rules file that parses writes back to
// the same rules.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/message.hpp"

namespace {

qv::FilterRule rule(int number, int header, qv::Comparison c, const char* keyword) {
    qv::FilterRule r;
    r.number = number;
    r.name = "r";
    r.header = header;
    r.comparison = static_cast<int>(c);
    r.keyword = keyword;
    r.folder = "F" + std::to_string(number);
    r.action = "0";
    return r;
}

const qv::FilterEngine& engine() {
    using C = qv::Comparison;
    static const qv::FilterEngine e(
        {qv::FilterSet{qv::FilterStage::user,
                       "joe@example.com",
                       {rule(1, 2, C::equals, "x"), rule(2, 2, C::contains, "ü"), rule(3, 33, C::not_contains, "a"),
                        rule(4, 1, C::starts_with, "b"), rule(5, 1, C::ends_with, ">"),
                        rule(6, 31, C::numeric, "%p * 2 > 5 || %p / (%p - 1) < 0"), rule(7, 12, C::regex, "(a|b+)+c$"),
                        rule(0, -1, C::not_my_id, "")},
                       {}}},
        qv::HeaderList::builtin());
    return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    qv::Message m = qv::parse_message(text);
    if (m.size != size || m.parts > qv::kMaxMimeParts) std::abort();
    for (auto& f : m.headers) {
        if (f.part > m.parts || f.name.empty()) std::abort();
        qv::fold_case(f.value);
        qv::header_addresses(f.value);
    }
    auto d = engine().evaluate(m, {"joe@example.com"}, true);
    if (d.trace.empty() || d.trace.size() > 8) std::abort();
    try {
        auto rules = qv::parse_filter_file(text, "fuzz");
        auto again = qv::parse_filter_file(qv::format_filter_file(rules), "fuzz");
        if (again.size() != rules.size()) std::abort();
        for (std::size_t i = 0; i < rules.size(); ++i)
            if (again[i].number != rules[i].number || again[i].name != rules[i].name ||
                again[i].keyword != rules[i].keyword || again[i].action != rules[i].action)
                std::abort();
    } catch (const qv::Error&) {
    }
    return 0;
}
