/* Implementation of proc.h with fork/execvp and a pipe for the output. */
#include "base/proc.h"

#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>

#include "base/util.h"

int proc_run(char *const argv[], char **ret_output) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        pid_t pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return negative_errno();
        }
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                dup2(pipefd[1], STDERR_FILENO);
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        dup2(devnull, STDIN_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(pipefd[1]);
        size_t cap = 65536, len = 0;
        char *out = xcalloc(1, cap + 1);
        for (;;) {
                char buf[4096];
                ssize_t n = read(pipefd[0], buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                size_t take = MIN((size_t)n, cap - len);
                memcpy(out + len, buf, take);
                len += take;
        }
        close(pipefd[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (ret_output)
                *ret_output = out;
        else
                free(out);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return -ENOENT;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}
