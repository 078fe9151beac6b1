// Fuzz target: envrules lines (bounce.envrules and its siblings). Each line of the input is read as a
// rule, with wildmat and with regex patterns. Properties: a line either parses or throws qv::Error; a
// parsed rule written back by format_envrule (when it can be) parses to the same pattern and variables;
// applying the rules to an address never fails.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "qvmail/envrules.hpp"
#include "qvmail/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    for (auto kind : {qv::PatternKind::wildmat, qv::PatternKind::regex}) {
        std::vector<qv::EnvRule> rules;
        std::string_view rest = text;
        while (!rest.empty()) {
            std::size_t nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
            try {
                qv::EnvRule r = qv::parse_envrule(line, kind);
                if (r.env.empty()) std::abort();
                try {
                    std::string again = qv::format_envrule(r.pattern, r.env);
                    qv::EnvRule back = qv::parse_envrule(again, kind);
                    if (back.pattern != r.pattern || back.env != r.env) std::abort();
                } catch (const qv::Error&) {  // what a line cannot hold (a '\' or blank ending a value)
                }
                rules.push_back(std::move(r));
            } catch (const qv::Error&) {
            }
        }
        // applying them to any address ends, whatever the patterns (the regex limits)
        for (std::string_view address :
             {std::string_view(""), std::string_view("joe@example.com"), text.substr(0, 64)}) {
            std::map<std::string, std::string> env;
            qv::apply_envrules(rules, address, kind, env);
        }
    }
    return 0;
}
