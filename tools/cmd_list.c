/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync list — host controllers, their frame-clock sources, USB devices.
 */
#include <string.h>

#include "backend.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s list [--json]\n"
            "\n"
            "Lists the host controllers (PCI address, driver, which frame-clock sources are\n"
            "usable here and why not) and the USB devices (bus:dev, vid:pid, speed, controller).\n"
            "A machine without USB hardware lists nothing and succeeds; 'sim' is always there.\n",
            cli_prog);
}

int cmd_list(int argc, char **argv)
{
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else {
            return cli_usage_error("list", usage, "unexpected argument '%s'", argv[i]);
        }
    }
    static struct usbts_controller_info ctl[64];
    static struct usbts_usbdev_info dev[256];
    int nctl, ndev;
    if (usbts_backend_list(ctl, 64, &nctl, dev, 256, &ndev) != 0) {
        fprintf(stderr, "%s list: cannot read /sys/bus/usb/devices: is sysfs mounted?\n", cli_prog);
        return EXIT_RUNTIME;
    }
    if (json) {
        for (int i = 0; i < nctl; i++) {
            printf("{\"type\": \"controller\", \"pci\": ");
            cli_json_string(stdout, ctl[i].pci);
            printf(", \"driver\": ");
            cli_json_string(stdout, ctl[i].driver);
            printf(", \"bus\": %d", ctl[i].bus);
            for (int k = 0; k < usbts_backend_source_count(); k++)
                printf(", \"%s\": %s", usbts_backend_source_name(k), ctl[i].source_ok[k] ? "true" : "false");
            printf(", \"why\": ");
            cli_json_string(stdout, ctl[i].why);
            struct cli_page_summary s;
            if (cli_daemon_page(ctl[i].pci, &s))
                printf(", \"daemon\": {\"pid\": %u, \"running\": %s, \"live\": %s, \"age_s\": %.3f, "
                       "\"generation\": %u}",
                       s.pid, s.pid_alive ? "true" : "false", s.live ? "true" : "false", s.age_s, s.generation);
            else
                printf(", \"daemon\": null");
            printf("}\n");
        }
        for (int i = 0; i < ndev; i++) {
            printf("{\"type\": \"device\", \"bus\": %d, \"dev\": %d, \"vid\": \"%04x\", \"pid\": \"%04x\", \"speed\": ",
                   dev[i].bus, dev[i].dev, dev[i].vid, dev[i].pid);
            cli_json_string(stdout, dev[i].speed);
            printf(", \"product\": ");
            cli_json_string(stdout, dev[i].product);
            printf(", \"controller\": ");
            cli_json_string(stdout, dev[i].controller);
            printf("}\n");
        }
        printf("{\"type\": \"summary\", \"controllers\": %d, \"devices\": %d, \"simulator\": \"sim\"}\n", nctl, ndev);
        return 0;
    }
    printf("host controllers:\n");
    if (nctl == 0)
        printf("  none found (no USB host controller on this machine); the simulator 'sim' is always available\n");
    for (int i = 0; i < nctl; i++) {
        printf("  %-14s bus %-3d %-10s sources:", ctl[i].pci, ctl[i].bus, ctl[i].driver);
        for (int k = 0; k < usbts_backend_source_count(); k++)
            printf("%s %s %s", k ? "," : "", usbts_backend_source_name(k), ctl[i].source_ok[k] ? "yes" : "no");
        printf("%s%s\n", ctl[i].why[0] ? " - " : "", ctl[i].why);
        if (i > 0 && !strcmp(ctl[i].pci, ctl[i - 1].pci))
            continue; /* one controller, two root hubs: its daemon line once */
        struct cli_page_summary s;
        if (cli_daemon_page(ctl[i].pci, &s))
            printf("  %-14s daemon: %s by pid %u (%s), page %.1f s old, generation %u\n", "",
                   s.live && s.pid_alive ? "served" : "was served", s.pid, s.pid_alive ? "running" : "gone",
                   s.age_s, s.generation);
        else
            printf("  %-14s daemon: not served (see 'usbtimesync status')\n", "");
    }
    printf("USB devices:\n");
    if (ndev == 0)
        printf("  none found\n");
    for (int i = 0; i < ndev; i++)
        printf("  %03d:%03d  %04x:%04x  %6s Mb/s  %-14s %s\n", dev[i].bus, dev[i].dev, dev[i].vid, dev[i].pid,
               dev[i].speed, dev[i].controller, dev[i].product);
    return 0;
}
