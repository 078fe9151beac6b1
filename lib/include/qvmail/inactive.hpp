// Inactive mailboxes and idle ones: IndiMail's indibak state and vdeloldusers.
//
// A mailbox's last activity is its latest login record (lastauth: any service, and "add", its creation),
// else the time of its Maildir/cur (IndiMail's own test), else none. It is idle after `days` days when
// that was more than `days` whole days ago (a login today counts as 0 days), or when there is none.
// Role mailboxes (postmaster, abuse, mailer-daemon) are never idle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qvmail/address.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/store.hpp"

namespace qv {

struct IdleMailbox {
    std::string name;
    std::optional<std::int64_t> last;  // Unix seconds of the last activity; nullopt: none known
    std::string last_service;          // its service ("add", "imap", ...; "maildir" for the Maildir's time)
    std::int64_t idle_days = -1;       // whole days since `last`; -1 when there is none
    bool inactive = false;             // inactive already
};

struct IdleScan {
    std::vector<IdleMailbox> idle;  // by name
    std::size_t mailboxes = 0;      // how many there are, active and inactive
};
// The idle mailboxes of `d`, active and inactive.
IdleScan idle_mailboxes(Store& store, const Domain& d, std::int64_t days, std::int64_t now);

// Moves a mailbox to the inactive set (active false) or back (true), in one change. An inactive mailbox
// keeps its record, home and mail, but delivery bounces its mail ("account is inactive", #5.1.3) and
// logins are refused. Throws Error 68, 67 (not in the set it leaves), 9 (in both).
void set_mailbox_active(const Paths& paths, Store& store, const Address& a, bool active, bool dry_run);

}  // namespace qv
