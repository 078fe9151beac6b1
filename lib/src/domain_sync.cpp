#include "qvmail/domain_sync.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <set>

#include "qvmail/address.hpp"
#include "qvmail/control.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/hash_method.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/transaction.hpp"
#include "qvmail/user.hpp"

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

// Why a row cannot be laid out ("" when it can): a name, handler, hash method or base path that
// vadddomain would have refused.
std::string invalid_row(const SharedDomain& row) {
    try {
        if (normalize_domain(row.name) != row.name) return "its name is not in lower case";
        if (!row.alias_of.empty()) {
            if (normalize_domain(row.alias_of) != row.alias_of) return "its domain's name is not in lower case";
            return "";
        }
        if (!row.handler.empty()) parse_handler(row.handler);
        if (!row.hash.empty() && !parse_hash_method(row.hash)) return "unknown hash method " + row.hash;
        if (!row.base_path.empty() &&
            (row.base_path[0] != '/' || std::filesystem::path(row.base_path).lexically_normal() != row.base_path))
            return "its base path " + row.base_path + " is not a plain absolute path";
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

std::string this_host_name(const Paths& paths) {
    return control_first_line(paths, "me").value_or("");
}

std::optional<ClusterHost> this_host_address(const Paths& paths) {
    const std::string file = paths.control("clusteraddress").string();
    std::string line = control_first_line(paths, "clusteraddress").value_or("");
    if (line.empty()) return std::nullopt;
    ClusterHost h;
    h.name = this_host_name(paths);
    std::string port;
    if (line[0] == '[') {
        auto close = line.find(']');
        if (close == std::string::npos) throw Error(Exit::config, file + ": no ']' in " + line);
        h.address = line.substr(1, close - 1);
        if (close + 1 < line.size()) {
            if (line[close + 1] != ':') throw Error(Exit::config, file + ": bad address " + line);
            port = line.substr(close + 2);
        }
    } else if (std::count(line.begin(), line.end(), ':') == 1) {
        h.address = line.substr(0, line.find(':'));
        port = line.substr(line.find(':') + 1);
    } else {
        h.address = line;
    }
    unsigned char buf[16];
    if (::inet_pton(AF_INET, h.address.c_str(), buf) != 1 && ::inet_pton(AF_INET6, h.address.c_str(), buf) != 1)
        throw Error(Exit::config, file + ": '" + h.address + "' is not an IP address");
    if (!port.empty()) {
        auto n = parse_decimal(port);
        if (!n || *n < 1 || *n > 65535) throw Error(Exit::config, file + ": bad port '" + port + "'");
        h.smtp_port = static_cast<int>(*n);
    }
    if (h.name.empty()) throw Error(Exit::config, file + " is set, but control/me names no host");
    h.base_path = paths.base_path.string();
    h.homes = control_first_line(paths, "clusterhomes").value_or("");
    return h;
}

MailboxPlace mailbox_place(const Paths& paths, Store& store, const DomainRef& d, std::string_view name) {
    MailboxPlace p;
    if (!store.shares_domains()) return p;
    auto host = store.mailbox_host(d, name);
    if (!host || host->empty()) return p;
    p.host = *host;
    if (*host == this_host_name(paths)) return p;
    p.local = false;
    p.where = store.cluster_host(*host);
    return p;
}

SyncResult sync_domains(const Paths& paths, Store& store, bool dry_run) {
    SyncResult r;
    if (!store.shares_domains()) return r;
    std::map<std::string, SharedDomain> real_rows;
    std::map<std::string, std::string> alias_rows;
    for (auto& row : store.shared_domains()) {
        // the rows name directories and files: each is checked as vadddomain checks its arguments
        if (std::string why = invalid_row(row); !why.empty()) {
            r.problems.push_back("the database's row for '" + row.name + "' is not used: " + why);
            if (r.exit_code == 0) r.exit_code = static_cast<int>(Exit::dataerr);
            continue;
        }
        if (row.alias_of.empty()) real_rows[row.name] = row;
        else alias_rows[row.name] = row.alias_of;
    }
    // this host's address, for the mail of its mailboxes that the others take
    if (auto addr = this_host_address(paths)) {
        auto known = store.cluster_host(addr->name);
        if (!known || *known != *addr) {
            if (!dry_run) store.register_host(*addr);
            r.changes.push_back(SyncChange{"register", addr->name,
                                           addr->address + " port " + std::to_string(addr->smtp_port) +
                                               (addr->homes.empty() ? "" : ", homes " + addr->homes),
                                           {}});
        }
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
    for (const auto& local : local_alias_domains(paths, domains)) {
        const std::string& alias = local.first;
        const std::string& real = local.second;
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
    for (const auto& entry : real_rows) {
        const std::string& name = entry.first;
        const SharedDomain& row = entry.second;
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
    for (const auto& entry : alias_rows) {
        const std::string& alias = entry.first;
        const std::string& real = entry.second;
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
    // 4. the homes of this host's mailboxes that another host added (vadduser --host)
    const std::string me = this_host_name(paths);
    if (!me.empty()) {
        std::map<std::string, std::optional<Domain>> seen;
        for (const auto& mailbox : store.host_mailboxes(me)) {
            const std::string& domain = mailbox.first;
            const std::string& name = mailbox.second;
            auto& d = seen[domain];
            if (!d) d = find_domain(paths, domain);
            if (!d) continue;  // a domain sync could not lay out: reported above
            auto u = store.get_user(d->ref(), name);
            std::error_code ec;
            if (!u || u->dir.empty() || std::filesystem::exists(std::filesystem::path(u->dir) / "Maildir", ec)) continue;
            // only a home laid out as vadduser lays them out: an absolute path ending in bucket/domain/name
            const std::filesystem::path home(u->dir);
            const auto layout = std::filesystem::path(std::string(mailbox_bucket(name))) / d->name / name;
            if (!home.is_absolute() || home.lexically_normal() != home ||
                home.parent_path().parent_path().parent_path() / layout != home) {
                r.problems.push_back("mailbox " + name + "@" + domain + ": its home " + u->dir + " does not end in " +
                                     layout.string() + ", as vadduser makes homes; not made");
                continue;
            }
            attempt(SyncChange{"add-home", name + "@" + domain, u->dir, {}}, [&](ChangeReport& rep) {
                FileTransaction tx(dry_run);
                stage_mailbox_home(tx, u->dir, d->owner);
                if (!dry_run) tx.commit();
                rep.steps = tx.log();
            });
        }
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
