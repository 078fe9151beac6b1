// A domain's limits. See domain_limits.hpp.
#include "qvmail/domain_limits.hpp"

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFile = ".qmailadmin-limits";
constexpr std::string_view kQuotaKey = "default_quota", kCountKey = "default_maxmsgcount";

// "key: value" (blanks around either allowed); nullopt for other lines.
std::optional<std::pair<std::string_view, std::string_view>> split(std::string_view line) {
    if (line.ends_with('\r')) line.remove_suffix(1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    return std::pair{trim_blanks(line.substr(0, colon)), trim_blanks(line.substr(colon + 1))};
}

}  // namespace

DomainLimits read_domain_limits(const Domain& d) {
    DomainLimits out;
    ControlFile f = ControlFile::load(d.dir / kFile);
    if (!f.exists()) return out;
    LineReader in = LineReader::from_text(f.text(), f.path());
    std::string_view line;
    while (in.next(line)) {
        auto kv = split(line);
        if (!kv || (kv->first != kQuotaKey && kv->first != kCountKey)) continue;
        // vpopmail writes -1 for "no limit"
        if (kv->second == "-1") continue;
        auto v = parse_decimal(kv->second);
        if (!v) throw ParseError(f.path(), in.line_number(), "not a number of bytes or messages", std::string(line));
        (kv->first == kQuotaKey ? out.default_quota : out.default_maxmsgcount) = *v;
    }
    return out;
}

std::vector<std::string> write_domain_limits(const Domain& d, const DomainLimits& limits, bool dry_run) {
    ControlFile f = ControlFile::load(d.dir / kFile);
    std::string text;
    f.for_each_line([&](std::string_view l) {
        auto kv = split(l);
        if (!kv || (kv->first != kQuotaKey && kv->first != kCountKey)) text.append(l).append("\n");
        return true;
    });
    if (limits.default_quota) text += std::string(kQuotaKey) + ": " + std::to_string(*limits.default_quota) + "\n";
    if (limits.default_maxmsgcount)
        text += std::string(kCountKey) + ": " + std::to_string(*limits.default_maxmsgcount) + "\n";
    FileTransaction tx(dry_run);
    if (text.empty())
        tx.remove(f.path());
    else
        tx.write(f.path(), text, 0640, d.owner);
    if (!dry_run) tx.commit();
    return tx.log();
}

std::string default_mailbox_quota(const Domain& d) {
    return default_mailbox_quota_of(read_domain_limits(d));
}

std::string default_mailbox_quota_of(const DomainLimits& l) {
    if (!l.default_quota) return "NOQUOTA";
    std::string q = std::to_string(*l.default_quota);
    if (l.default_maxmsgcount) q += "S," + std::to_string(*l.default_maxmsgcount) + "C";
    return q;
}

}  // namespace qv
