// A change to several files and directories that takes effect whole or not at all.
//
// Directories are created at once (later steps write into them) and removed again on rollback.
// File contents are staged in temporary files next to their targets; publish() renames them into
// place in order, keeping a hard link to each file it replaces, and moves removed files and trees
// aside. If any step fails, everything already done is undone. finish() then drops the saved
// copies and the trees moved aside. Dropping an unfinished transaction rolls it back.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/atomic_file.hpp"

namespace qv {

class FileTransaction {
public:
    // A dry run records what it would do (log()) and touches nothing; stage() is refused.
    explicit FileTransaction(bool dry_run = false) : dry_run_(dry_run) {}
    ~FileTransaction();
    FileTransaction(const FileTransaction&) = delete;
    FileTransaction& operator=(const FileTransaction&) = delete;

    // Creates `dir` and any missing parents now, each with `mode` (umask ignored) and `owner`.
    void make_dir(const std::filesystem::path& dir, mode_t mode, std::optional<Owner> owner = std::nullopt);
    // A new content for `target`, to be written by the caller into the returned file (e.g. a cdb).
    AtomicFile& stage(const std::filesystem::path& target, mode_t mode_if_new = 0644,
                      std::optional<Owner> owner_if_new = std::nullopt);
    // A new content for `target` that `job` writes into the given file on a thread of its own
    // (compiling a cdb, say), while the caller goes on staging; publish() waits for it and fails if
    // it threw.
    void stage_job(const std::filesystem::path& target, mode_t mode_if_new, std::function<void(AtomicFile&)> job);
    // A new content for `target`.
    void write(const std::filesystem::path& target, std::string_view content, mode_t mode_if_new = 0644,
               std::optional<Owner> owner_if_new = std::nullopt);
    // Removes a file or a whole directory tree at publish time (nothing if it does not exist).
    void remove(const std::filesystem::path& path);
    // Makes the symbolic link `link` -> `to` at publish time; a `link` that exists by then fails the change.
    // After remove(link), it replaces the link.
    void symlink(const std::filesystem::path& link, const std::filesystem::path& to);
    // Renames the file or directory `from` to `to` at publish time, after every other step (so the
    // change's writes inside `from` land before it moves). A `to` that exists by then, or one on another
    // file system, fails the change (Error 73).
    void move(const std::filesystem::path& from, const std::filesystem::path& to);

    // Whether a change to `target` is already staged (each target is staged once).
    bool staged(const std::filesystem::path& target) const;

    bool dry_run() const noexcept { return dry_run_; }
    // What the change does (or would do), one line per step, for -v and --dry-run.
    const std::vector<std::string>& log() const noexcept { return log_; }
    void note(std::string line) { log_.push_back(std::move(line)); }

    void publish();          // puts every staged change in place; undone entirely if one step fails
    void undo() noexcept;    // after publish(): restores what was there before
    void finish() noexcept;  // after publish(): forgets the saved copies; the change is final
    void commit() {
        publish();
        finish();
    }
    void rollback() noexcept;  // before or after publish, until finish

private:
    void wait_for_jobs();
    // Where `p` is after the moves applied so far (a path inside a moved directory moves with it).
    std::filesystem::path relocated(const std::filesystem::path& p) const;
    struct Step {
        enum Kind { write, remove, link, move } kind;
        std::filesystem::path target;
        std::unique_ptr<AtomicFile> file;  // write
        std::future<void> job;             // write by a job still running
        std::filesystem::path saved;       // the replaced file (hard link) or the moved-aside path
        bool applied = false;
        std::filesystem::path link_to;     // link: what the symbolic link says; move: where from
    };
    bool dry_run_ = false;
    std::vector<std::string> log_;
    std::vector<std::string> move_log_;  // the moves' lines, added to log_ after the rest (their order)
    void log_moves();
    std::vector<std::filesystem::path> created_dirs_;
    std::vector<std::filesystem::path> dry_dirs_;  // a dry run's directories, logged once
    std::vector<Step> steps_;
    bool published_ = false;
    bool finished_ = false;
};

// One file as a change of its own: replaced by `content` (its directory made if need be; new files get
// `mode_if_new`), or removed when `content` is nullopt. With `dry_run` it only says what it would do.
// Returns the steps.
std::vector<std::string> change_file(const std::filesystem::path& target, const std::optional<std::string>& content,
                                     mode_t mode_if_new, bool dry_run);

}  // namespace qv
