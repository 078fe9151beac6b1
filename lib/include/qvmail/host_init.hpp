// Laying out a mail host, as `qmailctl init` does: the system users and groups the programs run as,
// QMAILHOME's directories, the control files a host needs (with defaults), the SMTP access rules and
// their cdb, the queue, and the services' variables. Idempotent: what is there is left as it is (a
// file that differs from the default was edited, and is never rewritten), so a second run does nothing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

struct Paths;

// IndiMail's names for the accounts the programs run as, each in one group, without a shell, a
// password or a home of its own (its home is QMAILHOME).
struct SystemAccount {
    std::string_view name;
    std::string_view group;
    std::string_view purpose;  // the account's comment (GECOS) field: no ':'
};
const std::vector<SystemAccount>& system_accounts();
const std::vector<std::string_view>& system_groups();

struct HostInitOptions {
    std::optional<std::string> hostname;  // --hostname; nullopt: this machine's fully qualified name
    bool dry_run = false;
};

struct HostInitReport {
    std::string hostname;               // the name control/me gives the host (or would give it)
    std::vector<std::string> steps;     // what was done (or would be, in a dry run)
    std::vector<std::string> kept;      // files left as an administrator wrote them (they differ from the default)
    std::vector<std::string> warnings;  // what the administrator should know (a name that is not qualified, ...)
};

// A --hostname, lower-cased; throws Error 65 ("--hostname: ...") when it is not a domain name.
std::string normalize_hostname(std::string_view name);

// This machine's fully qualified name: the canonical name of gethostname(2)'s, or that name itself
// when the resolver knows no better.
std::string machine_hostname();

// Lays out the host (see above). The accounts are created only when running as root (groupadd(8),
// useradd(8)); otherwise everything belongs to the caller, and a warning says so. Throws Error: 65 for
// a --hostname that is not a domain name, 73 when something cannot be created (or useradd fails), 77
// when it needs privileges the caller lacks.
HostInitReport init_host(const Paths& paths, const HostInitOptions& opts);

}  // namespace qv
