#include "qvmail/domain_sync.hpp"

#include <map>
#include <set>

#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/hash_method.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace {

// This host's alias domains: name -> real domain.
std::map<std::string, std::string> local_alias_domains(const Paths& paths, const std::vector<Domain>& domains) {
    std::map<std::string, std::string> out;
    for (auto& d : domains)
        for (auto& a : alias_domains(d))
            if (auto ad = find_domain(paths, a); ad && ad->alias == a && ad->name == d.name) out[a] = d.name;
    return out;
}

// What differs between a domain of this host and its row, in words ("" when they agree). `fixable`:
// the differences sync mends (the others are reported).
std::string differences(const Paths& paths, const Domain& d, const SharedDomain& row, bool fixable) {
    std::vector<std::string> out;
    if (fixable) {
        if (!row.handler.empty() &&
            (!d.delivery || d.delivery->handler != row.handler || d.delivery->vfilter != row.vfilter))
            out.push_back("handler " + std::string(row.vfilter ? "vfilter" : "vdelivermail") + " '' " + row.handler);
        std::string hash = d.hash ? std::string(to_string(*d.hash)) : "";
        if (hash != row.hash) out.push_back("hash " + (row.hash.empty() ? std::string("none") : row.hash));
        if (row.chkrcpt != in_chkrcptdomains(paths, d.name))
            out.push_back(row.chkrcpt ? "in chkrcptdomains" : "not in chkrcptdomains");
    } else {
        Owner o = local_owner(row);
        if (o != d.owner)
            out.push_back("owner " + std::to_string(o.uid) + ":" + std::to_string(o.gid) + " in the database, " +
                          std::to_string(d.owner.uid) + ":" + std::to_string(d.owner.gid) + " here");
        std::filesystem::path bp = row.base_path.empty() ? paths.base_path : std::filesystem::path(row.base_path);
        if (bp != d.base_path)
            out.push_back("base path " + bp.string() + " in the database, " + d.base_path.string() + " here");
    }
    std::string text;
    for (auto& s : out) text += (text.empty() ? "" : ", ") + s;
    return text;
}

}  // namespace

SyncResult sync_domains(const Paths& paths, Store& store, bool dry_run) {
    SyncResult r;
    if (!store.shares_domains()) return r;
    std::map<std::string, SharedDomain> real_rows;
    std::map<std::string, std::string> alias_rows;
    for (auto& row : store.shared_domains()) {
        if (row.alias_of.empty()) real_rows[row.name] = row;
        else alias_rows[row.name] = row.alias_of;
    }
    std::set<std::string> removed;
    for (auto& n : store.removed_domains()) removed.insert(n);
    std::vector<Domain> domains = list_domains(paths);
    auto attempt = [&](SyncChange c, auto&& fn) {
        try {
            ChangeReport rep;
            fn(rep);
            c.steps = std::move(rep.steps);
            r.changes.push_back(std::move(c));
        } catch (const Error& e) {
            store.rollback();
            r.problems.push_back(c.action + " " + c.domain + ": " + e.what());
            if (r.exit_code == 0) r.exit_code = static_cast<int>(e.code());
        }
    };

    // 1. what the database removed: alias domains, then domains; a name it merely lacks stays, reported
    auto lacking = [&](const std::string& what) {
        r.problems.push_back(what + " is on this host but not in the database, which never had it or lost it "
                                    "(qmailctl db init records this host's domains there; vdeldomain removes it)");
    };
    for (auto& [alias, real] : local_alias_domains(paths, domains)) {
        auto it = alias_rows.find(alias);
        if (it != alias_rows.end() && it->second == real) continue;
        if (it == alias_rows.end() && !removed.count(alias) && !real_rows.count(alias)) {
            lacking("alias domain " + alias + " (of " + real + ")");
            continue;
        }
        attempt(SyncChange{"remove-alias", alias, "alias of " + real, {}},
                [&](ChangeReport& rep) { delete_domain(paths, store, alias, dry_run, &rep); });
    }
    std::set<std::string> here;
    for (auto& d : domains) {
        if (real_rows.count(d.name) || (!removed.count(d.name) && !alias_rows.count(d.name))) {
            if (!real_rows.count(d.name)) lacking("domain " + d.name);
            here.insert(d.name);
            continue;
        }
        attempt(SyncChange{"remove", d.name, "removed on another host", {}},
                [&](ChangeReport& rep) { delete_domain(paths, store, d.name, dry_run, &rep, true); });
    }

    // 2. domains to add and to bring in line
    for (auto& [name, row] : real_rows) {
        if (!here.count(name)) {
            attempt(SyncChange{"add", name, "", {}},
                    [&](ChangeReport& rep) { add_local_domain(paths, store, row, dry_run, &rep); });
            continue;
        }
        Domain d = require_domain(paths, name);
        if (std::string fixed = differences(paths, d, row, true); !fixed.empty())
            attempt(SyncChange{"update", name, fixed, {}},
                    [&](ChangeReport& rep) { update_local_domain(paths, store, d, row, dry_run, &rep); });
        if (std::string left = differences(paths, d, row, false); !left.empty())
            r.problems.push_back("domain " + name + ": " + left + " (not changed by sync)");
    }

    // 3. alias domains to add (their real domain is here now, or would be)
    auto local_aliases = local_alias_domains(paths, list_domains(paths));
    for (auto& [alias, real] : alias_rows) {
        if (local_aliases.count(alias)) continue;
        SyncChange c{"add-alias", alias, "alias of " + real, {}};
        if (dry_run && !find_domain(paths, real)) {
            r.changes.push_back(std::move(c));  // its domain would be added first
            continue;
        }
        attempt(std::move(c), [&](ChangeReport& rep) {
            add_alias_domain(paths, store, alias, real, dry_run, &rep, false);
        });
    }
    return r;
}

std::vector<SyncChange> import_domains(const Paths& paths, Store& store, bool dry_run) {
    std::vector<SyncChange> out;
    if (!store.shares_domains()) return out;
    std::set<std::string> known;
    for (auto& row : store.shared_domains()) known.insert(row.name);
    std::vector<Domain> domains = list_domains(paths);
    try {
        for (auto& d : domains) {
            if (known.count(d.name)) continue;
            store.put_shared_domain(shared_domain_of(d, in_chkrcptdomains(paths, d.name), paths));
            out.push_back(SyncChange{"import", d.name, "", {}});
        }
        for (auto& [alias, real] : local_alias_domains(paths, domains)) {
            if (known.count(alias)) continue;
            store.put_shared_domain(alias_domain_row(alias, real));
            out.push_back(SyncChange{"import-alias", alias, "alias of " + real, {}});
        }
        FileTransaction tx(dry_run);
        apply_change(tx, store);
    } catch (...) {
        store.rollback();
        throw;
    }
    return out;
}

}  // namespace qv
