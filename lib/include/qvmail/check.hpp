// Read-only consistency checks of a mail host: users/assign, the control files, the domain
// directories, the store and the cdb databases must agree. Used by `qmailctl check`.
#pragma once

#include <string>
#include <vector>

#include "qvmail/progress.hpp"

namespace qv {

struct Paths;
class Store;

struct Finding {
    enum Severity { problem, warning } severity;
    std::string domain;  // empty for host-wide findings
    std::string check;   // a short stable name, e.g. "rcpthosts", "home", "cdb"
    std::string message;
};

struct CheckSummary {
    std::size_t domains = 0;
    std::size_t mailboxes = 0;
    std::vector<Finding> findings;
};

// `progress` hears of each domain checked.
CheckSummary check_host(const Paths& paths, Store& store, const ProgressFn& progress = {});

}  // namespace qv
