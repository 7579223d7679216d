/* The least any forking setuid runner does, as a reference row for bench/run: start setuid
 * root, fork, become root in the child and exec the command, wait for it, and exit with its
 * status. No checks, no log, no signal relaying: what sudo and the elevator both do at least.
 *
 * Build: cc -O2 -o floor bench/floor.c, installed root-owned with mode 4755. */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 64;
    pid_t pid = fork();
    if (pid < 0)
        return 71;
    if (pid == 0) {
        if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
            _exit(126);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return 71;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
