// A domain's limits: the default quota and message count of its new mailboxes (IndiMail's vlimit -q and
// -m). Kept in the domain directory as vpopmail keeps its limits, so that vpopmail's qmailadmin reads them
// too: <domain dir>/.qmailadmin-limits, "key: value" lines (default_quota in bytes, default_maxmsgcount;
// other keys are kept as they are). They move with the domain (vrenamedomain) and go with it (vdeldomain).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qvmail/domain.hpp"

namespace qv {

struct DomainLimits {
    std::optional<std::uint64_t> default_quota;        // bytes; nullopt: no default (NOQUOTA)
    std::optional<std::uint64_t> default_maxmsgcount;  // messages; nullopt: no limit
    bool any() const noexcept { return default_quota || default_maxmsgcount; }
};

// Reads the file (missing: no limits). A value that is not a number throws ParseError naming the line.
DomainLimits read_domain_limits(const Domain& d);
// Writes the two keys (a key without a value is taken out), keeping the file's other lines; the file goes
// when nothing is left. Atomic; with `dry_run` nothing is written. Returns the steps.
std::vector<std::string> write_domain_limits(const Domain& d, const DomainLimits& limits, bool dry_run);

// The quota a new mailbox of `d` gets when none is given, in the stored form (see normalize_quota):
// NOQUOTA, "<bytes>", or "<bytes>S,<count>C".
std::string default_mailbox_quota(const Domain& d);
std::string default_mailbox_quota_of(const DomainLimits& limits);

}  // namespace qv
