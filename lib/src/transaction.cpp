#include "qvmail/transaction.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>

#include "qvmail/error.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

// A name beside `p` that does not exist yet: .<name>.<tag>.<random>
fs::path aside_name(const fs::path& p, std::string_view tag) {
    static std::mt19937_64 rng(std::random_device{}() ^ static_cast<std::uint64_t>(::getpid()));
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (;;) {
        std::string name(1, '.');
        name.append(p.filename().string()).append(1, '.').append(tag).append(1, '.');
        for (int i = 0; i < 8; ++i) name += digits[rng() % 36];
        fs::path cand = p.parent_path() / name;
        struct stat st {};
        if (::lstat(cand.c_str(), &st) != 0 && errno == ENOENT) return cand;
    }
}

}  // namespace

FileTransaction::~FileTransaction() {
    if (!finished_) rollback();
}

namespace {
std::string describe_owner(mode_t mode, std::optional<Owner> owner) {
    char m[8];
    std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode & 07777));
    std::string s = std::string(" (mode ") + m;
    if (owner) s += ", owner " + std::to_string(owner->uid) + ":" + std::to_string(owner->gid);
    return s + ")";
}
}  // namespace

void FileTransaction::make_dir(const fs::path& dir, mode_t mode, std::optional<Owner> owner) {
    std::vector<fs::path> missing;
    for (fs::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
        if (dry_run_ && std::find(dry_dirs_.begin(), dry_dirs_.end(), p) != dry_dirs_.end()) break;
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) {
            // a link to a directory will do (daemontools' /service/<name> are links)
            if (S_ISLNK(st.st_mode) && ::stat(p.c_str(), &st) != 0) st.st_mode = 0;
            if (!S_ISDIR(st.st_mode)) throw Error(Exit::cantcreat, p.string() + " exists and is not a directory");
            break;
        }
        missing.push_back(p);
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        log_.push_back("create directory " + it->string() + describe_owner(mode, owner));
        if (dry_run_) {
            dry_dirs_.push_back(*it);  // made, as far as the rest of a dry run goes
            continue;
        }
        if (::mkdir(it->c_str(), mode) != 0) {
            int e = errno;
            throw sys_error(e == ENOSPC || e == EDQUOT ? Exit::ioerr : Exit::cantcreat, "cannot create directory", *it,
                            e);
        }
        created_dirs_.push_back(*it);
        if (::chmod(it->c_str(), mode) != 0) {
            int e = errno;
            throw sys_error(Exit::cantcreat, "cannot set the mode of", *it, e);
        }
        if (owner) give_to(-1, *it, *owner);
    }
}

bool FileTransaction::staged(const fs::path& target) const {
    return std::any_of(steps_.begin(), steps_.end(), [&](const Step& s) { return s.target == target; });
}

AtomicFile& FileTransaction::stage(const fs::path& target, mode_t mode_if_new, std::optional<Owner> owner_if_new) {
    if (staged(target)) throw Error(Exit::software, "staged twice in one change: " + target.string());
    if (dry_run_) throw Error(Exit::software, "stage() in a dry run: " + target.string());
    log_.push_back("write " + target.string());
    Step s{Step::write, target, std::make_unique<AtomicFile>(target, mode_if_new, owner_if_new), {}, {}, false, {}};
    steps_.push_back(std::move(s));
    return *steps_.back().file;
}

void FileTransaction::stage_job(const fs::path& target, mode_t mode_if_new, std::function<void(AtomicFile&)> job) {
    if (dry_run_) {
        if (staged(target)) throw Error(Exit::software, "staged twice in one change: " + target.string());
        log_.push_back("write " + target.string());
        steps_.push_back(Step{Step::write, target, nullptr, {}, {}, false, {}});
        return;
    }
    AtomicFile& f = stage(target, mode_if_new);
    steps_.back().job = std::async(std::launch::async, [&f, job = std::move(job)] { job(f); });
}

void FileTransaction::wait_for_jobs() {
    std::exception_ptr first;
    for (auto& s : steps_) {
        if (!s.job.valid()) continue;
        try {
            s.job.get();
        } catch (...) {
            if (!first) first = std::current_exception();
        }
    }
    if (first) std::rethrow_exception(first);
}

void FileTransaction::write(const fs::path& target, std::string_view content, mode_t mode_if_new,
                            std::optional<Owner> owner_if_new) {
    if (dry_run_) {
        if (staged(target)) throw Error(Exit::software, "staged twice in one change: " + target.string());
        log_.push_back("write " + target.string());
        steps_.push_back(Step{Step::write, target, nullptr, {}, {}, false, {}});
        return;
    }
    stage(target, mode_if_new, owner_if_new).write(content);
}

void FileTransaction::remove(const fs::path& path) {
    if (staged(path)) throw Error(Exit::software, "staged twice in one change: " + path.string());
    log_.push_back("remove " + path.string());
    steps_.push_back(Step{Step::remove, path, nullptr, {}, {}, false, {}});
}

void FileTransaction::symlink(const fs::path& link, const fs::path& to) {
    bool replaces = std::any_of(steps_.begin(), steps_.end(),
                                [&](const Step& s) { return s.target == link && s.kind == Step::remove; });
    if (staged(link) && !replaces) throw Error(Exit::software, "staged twice in one change: " + link.string());
    log_.push_back("link " + link.string() + " -> " + to.string());
    steps_.push_back(Step{Step::link, link, nullptr, {}, {}, false, to});
}

void FileTransaction::move(const fs::path& from, const fs::path& to) {
    if (staged(to)) throw Error(Exit::software, "staged twice in one change: " + to.string());
    move_log_.push_back("move " + from.string() + " -> " + to.string());
    steps_.push_back(Step{Step::move, to, nullptr, {}, {}, false, from});
}

fs::path FileTransaction::relocated(const fs::path& p) const {
    fs::path out = p;
    for (auto& s : steps_) {
        if (s.kind != Step::move || !s.applied) continue;
        auto rel = out.lexically_relative(s.link_to);
        if (!rel.empty() && *rel.begin() != "..") out = rel == "." ? s.target : s.target / rel;
    }
    return out;
}

void FileTransaction::log_moves() {
    log_.insert(log_.end(), move_log_.begin(), move_log_.end());
    move_log_.clear();
}

void FileTransaction::publish() {
    log_moves();
    if (dry_run_) {
        published_ = true;
        return;
    }
    wait_for_jobs();
    // Moves go last, in the order given, so that undo (in reverse) takes them back first.
    std::stable_partition(steps_.begin(), steps_.end(), [](const Step& s) { return s.kind != Step::move; });
    // Everything that can fail slowly (sync, mode, owner) happens before anything is replaced. All
    // files start writing out together, so their syncs overlap instead of queueing one by one.
    for (auto& s : steps_)
        if (s.kind == Step::write) s.file->start_writeback();
    for (auto& s : steps_)
        if (s.kind == Step::write) s.file->prepare();
    std::set<fs::path> dirs;
    try {
        for (auto& s : steps_) {
            struct stat st {};
            bool exists = ::lstat(s.target.c_str(), &st) == 0;
            if (s.kind == Step::write) {
                if (exists) {
                    s.saved = aside_name(s.target, "old");
                    if (::link(s.target.c_str(), s.saved.c_str()) != 0) {
                        int e = errno;
                        s.saved.clear();
                        throw sys_error(Exit::cantcreat, "cannot keep the old copy of", s.target, e);
                    }
                }
                s.file->publish();
                s.applied = true;
            } else if (s.kind == Step::link) {
                if (::symlink(s.link_to.c_str(), s.target.c_str()) != 0)
                    throw sys_error(Exit::cantcreat, "cannot make the link", s.target, errno);
                s.applied = true;
            } else if (s.kind == Step::move) {
                if (::renameat2(AT_FDCWD, s.link_to.c_str(), AT_FDCWD, s.target.c_str(), RENAME_NOREPLACE) != 0) {
                    int e = errno;
                    if (e == EXDEV)
                        throw Error(Exit::cantcreat, "cannot move " + s.link_to.string() + " to " + s.target.string() +
                                                         ": they are on different file systems");
                    throw sys_error(Exit::cantcreat, "cannot move " + s.link_to.string() + " to", s.target, e);
                }
                s.applied = true;
                dirs.insert(s.link_to.parent_path());
            } else {
                if (!exists) continue;
                s.saved = aside_name(s.target, "removed");
                if (::rename(s.target.c_str(), s.saved.c_str()) != 0) {
                    int e = errno;
                    s.saved.clear();
                    throw sys_error(Exit::cantcreat, "cannot remove", s.target, e);
                }
                s.applied = true;
            }
            dirs.insert(s.target.parent_path());
        }
    } catch (...) {
        undo();
        throw;
    }
    published_ = true;
    for (auto& d : dirs) sync_directory(relocated(d));
}

void FileTransaction::undo() noexcept {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
        Step& s = *it;
        if (!s.applied) {
            if (s.kind == Step::write && !s.saved.empty()) ::unlink(s.saved.c_str());
            s.saved.clear();
            continue;
        }
        if (s.kind == Step::write) {
            if (!s.saved.empty())
                ::rename(s.saved.c_str(), s.target.c_str());
            else
                ::unlink(s.target.c_str());
        } else if (s.kind == Step::link) {
            ::unlink(s.target.c_str());
        } else if (s.kind == Step::move) {
            ::rename(s.target.c_str(), s.link_to.c_str());
            sync_directory(s.link_to.parent_path());
        } else {
            ::rename(s.saved.c_str(), s.target.c_str());
        }
        s.saved.clear();
        s.applied = false;
        sync_directory(s.target.parent_path());
    }
    published_ = false;
}

void FileTransaction::finish() noexcept {
    log_moves();
    for (auto& s : steps_) {
        if (s.saved.empty()) continue;
        std::error_code ec;
        fs::remove_all(relocated(s.saved), ec);  // a saved copy inside a moved directory went with it
        s.saved.clear();
    }
    steps_.clear();
    created_dirs_.clear();
    finished_ = true;
}

void FileTransaction::rollback() noexcept {
    for (auto& s : steps_)  // a job still writing must finish before its file goes
        if (s.job.valid()) s.job.wait();
    if (published_) undo();
    steps_.clear();  // discards the staged temporary files
    for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) {
        std::error_code ec;
        fs::remove_all(*it, ec);
    }
    created_dirs_.clear();
    finished_ = true;
}

std::vector<std::string> change_file(const std::filesystem::path& target, const std::optional<std::string>& content,
                                     mode_t mode_if_new, bool dry_run) {
    FileTransaction tx(dry_run);
    if (content) {
        tx.make_dir(target.parent_path(), 0755);
        tx.write(target, *content, mode_if_new);
    } else {
        tx.remove(target);
    }
    if (!dry_run) tx.commit();
    return tx.log();
}

}  // namespace qv
