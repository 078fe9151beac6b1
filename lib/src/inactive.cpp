// Inactive and idle mailboxes. See inactive.hpp.
#include "qvmail/inactive.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "qvmail/transaction.hpp"
#include "qvmail/user.hpp"

namespace qv {

namespace {

std::optional<std::int64_t> maildir_time(const UserRecord& u) {
    if (u.dir.empty()) return std::nullopt;
    struct stat st {};
    if (::stat((u.dir + "/Maildir/cur").c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::int64_t>(st.st_mtime);
}

}  // namespace

IdleScan idle_mailboxes(Store& store, const Domain& d, std::int64_t days, std::int64_t now) {
    const DomainRef ref = d.ref();
    auto logins = store.logins(ref);
    IdleScan scan;
    std::vector<IdleMailbox>& out = scan.idle;
    auto consider = [&](const UserRecord& u, bool inactive) {
        if (is_role_account(u.name)) return;
        IdleMailbox m;
        m.name = u.name;
        m.inactive = inactive;
        if (auto it = logins.find(u.name); it != logins.end())
            for (const auto& l : it->second)
                if (!m.last || l.time > *m.last) m.last = l.time, m.last_service = l.service;
        if (!m.last)
            if (auto t = maildir_time(u)) m.last = *t, m.last_service = "maildir";
        if (m.last) {
            m.idle_days = std::max<std::int64_t>(0, now - *m.last) / 86400;
            if (m.idle_days <= days) return;
        }
        out.push_back(std::move(m));
    };
    auto active = store.users(ref), inactive = store.inactive_users(ref);
    for (const auto& u : active) consider(u, false);
    for (const auto& u : inactive) consider(u, true);
    scan.mailboxes = active.size() + inactive.size();
    std::sort(out.begin(), out.end(), [](const IdleMailbox& a, const IdleMailbox& b) { return a.name < b.name; });
    return scan;
}

void set_mailbox_active(const Paths& paths, Store& store, const Address& a, bool active, bool dry_run) {
    Domain d = require_domain(paths, store, a.domain);
    retry_rolled_back(store, [&] {
        FileTransaction tx(dry_run);
        store.set_active(d.ref(), a.local, active);
        apply_change(tx, store);
    });
}

}  // namespace qv
