// SPDX-License-Identifier: GPL-2.0-only OR MIT
/*
 * usbts_mfindex - read an xHCI controller's MFINDEX register for user space,
 * each read bracketed by ktime_get_ns() with local interrupts off around
 * that one read, so the bracket is the register access and nothing else.
 *
 * The controller is found through the USB core: every root hub's usb_hcd,
 * its "regs" mapping (the one the xhci driver uses) and RTSOFF from the
 * capability registers.  A reference on an hcd would not keep its registers
 * mapped (the PCI glue unmaps them right after usb_remove_hcd()), so the
 * module keeps its own table of root hubs, filled by a scan at load and by
 * USB notifications, emptied by the removal notifications that usb_remove_hcd()
 * sends before the driver stops the controller.  Every register access runs
 * inside an SRCU read section, and removal waits for those sections to end
 * (synchronize_srcu) before it lets the USB core go on: no read can touch an
 * unmapped register.
 *
 * Nothing but MFINDEX (and the capability registers that locate it) is ever
 * read, and no register is written.  See docs/KMOD.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/slab.h>
#include <linux/srcu.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/usb.h>
#include <linux/usb/hcd.h>

#include "usbts_mfindex.h"

#define XHCI_CAPLENGTH_HCIVERSION 0x00
#define XHCI_RTSOFF 0x18
#define XHCI_RTSOFF_MASK (~0x1fu)
#define XHCI_HCD_NAME "xhci-hcd"
#define MAX_ROOT_HUBS 64	/* the USB core numbers at most 64 buses */

/* One root hub the module may read through.  A slot is claimed by storing
 * hcd last (release) and freed by clearing hcd, then waiting for readers
 * (synchronize_srcu) before the slot may be claimed again.
 */
struct root_hub {
	struct usb_hcd *hcd;		/* NULL: free */
	struct usb_hcd *regs_hcd;	/* whose register mapping is read */
	int busnum;
	char name[USBTS_MFINDEX_NAME_LEN];	/* the controller's dev_name */
};

static struct root_hub hubs[MAX_ROOT_HUBS];
static DEFINE_MUTEX(hubs_lock);	/* serialises writers of hubs[] */
static struct srcu_struct readers;
static bool unloading;		/* set under hubs_lock once exit starts */

struct usbts_file {
	struct mutex lock;	/* one request at a time uses buf */
	struct usbts_mfindex_sample buf[USBTS_MFINDEX_MAX_BURST];
};

/* ---- the table of root hubs ------------------------------------------- */

/*
 * The hcd whose regs the module reads: the primary one of a pair (an xHCI
 * controller's USB 3 root hub has a shared hcd; the primary owns the
 * mapping, and the PCI glue unmaps it after removing the primary).
 */
static struct usb_hcd *regs_owner(struct usb_hcd *hcd)
{
	return hcd->primary_hcd ? hcd->primary_hcd : hcd;
}

static void hub_add_locked(struct usb_device *root)
{
	struct usb_hcd *hcd = bus_to_hcd(root->bus);
	struct device *ctl = hcd->self.controller;
	int i, free = -1;

	lockdep_assert_held(&hubs_lock);
	if (unloading || READ_ONCE(root->state) == USB_STATE_NOTATTACHED)
		return;	/* being removed: its removal notice may be past */
	for (i = 0; i < MAX_ROOT_HUBS; i++) {
		if (hubs[i].hcd == hcd)
			return;
		if (!hubs[i].hcd && free < 0)
			free = i;
	}
	if (free < 0) {
		pr_warn("more than %d root hubs; bus %d is not readable\n",
			MAX_ROOT_HUBS, hcd->self.busnum);
		return;
	}
	hubs[free].regs_hcd = regs_owner(hcd);
	hubs[free].busnum = hcd->self.busnum;
	strscpy(hubs[free].name, ctl ? dev_name(ctl) : "",
		sizeof(hubs[free].name));
	/* pairs with hub_find()'s acquire: who sees hcd sees the rest */
	smp_store_release(&hubs[free].hcd, hcd);
}

/* Forgets every slot that reads through hcd (its own, and a USB 3 root hub
 * that borrows its mapping), then waits until no reader can still hold one.
 */
static void hub_remove(struct usb_hcd *hcd)
{
	bool any = false;
	int i;

	mutex_lock(&hubs_lock);
	for (i = 0; i < MAX_ROOT_HUBS; i++) {
		if (hubs[i].hcd &&
		    (hubs[i].hcd == hcd || hubs[i].regs_hcd == hcd)) {
			WRITE_ONCE(hubs[i].hcd, NULL);
			any = true;
		}
	}
	if (any)
		synchronize_srcu(&readers);
	mutex_unlock(&hubs_lock);
}

static int usb_event(struct notifier_block *nb, unsigned long action,
		     void *data)
{
	struct usb_device *udev;

	switch (action) {
	case USB_DEVICE_ADD:
		udev = data;
		if (!udev->parent) {
			mutex_lock(&hubs_lock);
			hub_add_locked(udev);
			mutex_unlock(&hubs_lock);
		}
		break;
	case USB_DEVICE_REMOVE:
		udev = data;
		if (!udev->parent)
			hub_remove(bus_to_hcd(udev->bus));
		break;
	case USB_BUS_REMOVE:
		hub_remove(bus_to_hcd(data));
		break;
	}
	return NOTIFY_OK;
}

static struct notifier_block usb_nb = {
	.notifier_call = usb_event,
};

static int scan_one(struct usb_device *udev, void *unused)
{
	if (!udev->parent) {
		mutex_lock(&hubs_lock);
		hub_add_locked(udev);
		mutex_unlock(&hubs_lock);
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

static bool name_ok(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!(isalnum(c) || c == ':' || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return len > 0;
}

/* The slot a request names, or NULL.  Called inside the SRCU section. */
static struct root_hub *hub_find(const struct usbts_mfindex_burst *req)
{
	struct root_hub *found = NULL;
	int i;

	for (i = 0; i < MAX_ROOT_HUBS; i++) {
		/* pairs with hub_add_locked()'s release */
		struct usb_hcd *hcd = smp_load_acquire(&hubs[i].hcd);

		if (!hcd)
			continue;
		if (req->busnum) {
			if (hubs[i].busnum == (int)req->busnum)
				return &hubs[i];
		} else if (!strcmp(hubs[i].name, req->controller)) {
			/* prefer the slot that owns the mapping */
			if (hubs[i].regs_hcd == hcd)
				return &hubs[i];
			found = &hubs[i];
		}
	}
	return found;
}

/*
 * Where MFINDEX is, after checking that the mapping is an xHCI register
 * block: the USB core's hc_driver names the driver, the capability registers
 * give the runtime registers' offset, and that must lie inside the resource.
 */
static int mfindex_addr(struct usb_hcd *hcd, void __iomem **out)
{
	u32 cap0, rtsoff;

	if (!hcd->driver || !hcd->driver->description ||
	    strcmp(hcd->driver->description, XHCI_HCD_NAME) ||
	    !(hcd->driver->flags & HCD_MEMORY) || !hcd->regs ||
	    hcd->rsrc_len < XHCI_RTSOFF + 4)
		return -EOPNOTSUPP;
	if (test_bit(HCD_FLAG_DEAD, &hcd->flags))
		return -ENODEV;
	if (!test_bit(HCD_FLAG_HW_ACCESSIBLE, &hcd->flags))
		return -EAGAIN;
	cap0 = readl(hcd->regs + XHCI_CAPLENGTH_HCIVERSION);
	rtsoff = readl(hcd->regs + XHCI_RTSOFF) & XHCI_RTSOFF_MASK;
	if (cap0 == ~0u || rtsoff == (~0u & XHCI_RTSOFF_MASK))
		return test_bit(HCD_FLAG_HW_ACCESSIBLE, &hcd->flags) ?
			-ENODEV : -EAGAIN;
	if ((cap0 & 0xff) < 0x20 || rtsoff < 0x20 ||
	    rtsoff > hcd->rsrc_len - 4)
		return -EOPNOTSUPP;
	*out = hcd->regs + rtsoff;
	return 0;
}

/* One MFINDEX read with interrupts off only around it: nothing but the
 * register access can fall inside the bracket, except an NMI or SMI.
 */
static u32 read_bracketed(void __iomem *reg, struct usbts_mfindex_sample *s)
{
	unsigned long flags;
	u32 v;

	local_irq_save(flags);
	s->before_ns = ktime_get_ns();
	v = readl(reg);
	s->after_ns = ktime_get_ns();
	local_irq_restore(flags);
	s->mfindex = v;
	s->reserved = 0;
	return v;
}

/* Fills buf with up to req->count samples; returns how many, or -errno. */
static int burst(const struct usbts_mfindex_burst *req,
		 struct usbts_mfindex_sample *buf)
{
	struct root_hub *hub;
	struct usb_hcd *hcd;
	void __iomem *reg;
	u32 n, first = 0;
	int idx, ret;

	idx = srcu_read_lock(&readers);
	hub = READ_ONCE(unloading) ? NULL : hub_find(req);
	if (!hub) {
		ret = -ENODEV;
		goto out;
	}
	hcd = hub->regs_hcd;
	ret = mfindex_addr(hcd, &reg);
	if (ret)
		goto out;
	for (n = 0; n < req->count; n++) {
		u32 v = read_bracketed(reg, &buf[n]);

		if (v == ~0u) {
			/* suspended since the check, or gone from the bus */
			ret = test_bit(HCD_FLAG_HW_ACCESSIBLE, &hcd->flags) ?
				-ENODEV : -EAGAIN;
			goto out;
		}
		if (n == 0)
			first = v;
		else if ((req->flags & USBTS_MFINDEX_STOP_ON_CHANGE) &&
			 v != first) {
			n++;
			break;
		}
	}
	ret = n;
out:
	srcu_read_unlock(&readers, idx);
	return ret;
}

/* ---- the character device ------------------------------------------------ */

static long ioc_info(void __user *arg)
{
	struct usbts_mfindex_info info;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.size != sizeof(info))
		return -EINVAL;
	info.abi = USBTS_MFINDEX_ABI;
	info.max_burst = USBTS_MFINDEX_MAX_BURST;
	info.reserved = 0;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long ioc_burst(struct usbts_file *f, void __user *arg)
{
	struct usbts_mfindex_burst req;
	void __user *out;
	size_t name_len;
	int n;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) ||
	    (req.flags & ~USBTS_MFINDEX_STOP_ON_CHANGE) ||
	    req.count < 1 || req.count > USBTS_MFINDEX_MAX_BURST)
		return -EINVAL;
	name_len = strnlen(req.controller, sizeof(req.controller));
	if (name_len == sizeof(req.controller))
		return -EINVAL;	/* not NUL-terminated */
	if (req.busnum ? name_len != 0 : !name_ok(req.controller, name_len))
		return -EINVAL;
	out = u64_to_user_ptr(req.samples);
	if (!access_ok(out, (size_t)req.count * sizeof(f->buf[0])))
		return -EFAULT;

	/* The samples are gathered into the file's buffer and copied out after
	 * the SRCU section: a page fault on user memory (even one that waits
	 * on userfaultfd) must never hold up a controller's removal.
	 */
	if (mutex_lock_interruptible(&f->lock))
		return -EINTR;
	n = burst(&req, f->buf);
	if (n > 0 && copy_to_user(out, f->buf, (size_t)n * sizeof(f->buf[0])))
		n = -EFAULT;
	mutex_unlock(&f->lock);
	if (n < 0)
		return n;
	req.count = n;
	return copy_to_user(arg, &req, sizeof(req)) ? -EFAULT : 0;
}

static long usbts_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case USBTS_MFINDEX_IOC_INFO:
		return ioc_info((void __user *)arg);
	case USBTS_MFINDEX_IOC_BURST:
		return ioc_burst(file->private_data, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int usbts_open(struct inode *inode, struct file *file)
{
	struct usbts_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return nonseekable_open(inode, file);
}

static int usbts_release(struct inode *inode, struct file *file)
{
	struct usbts_file *f = file->private_data;

	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

/* .owner pins the module while a file is open: rmmod is refused then. */
static const struct file_operations usbts_fops = {
	.owner = THIS_MODULE,
	.open = usbts_open,
	.release = usbts_release,
	.unlocked_ioctl = usbts_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice usbts_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "usbts_mfindex",
	.fops = &usbts_fops,
	.mode = 0600,	/* udev's rule adds the group */
};

static int __init usbts_init(void)
{
	int ret = init_srcu_struct(&readers);

	if (ret)
		return ret;
	/* Notifications first, then the scan: a root hub added in between is
	 * seen twice (hub_add_locked ignores the second), and one removed in
	 * between is skipped by its NOTATTACHED state.
	 */
	usb_register_notify(&usb_nb);
	usb_for_each_dev(NULL, scan_one);
	ret = misc_register(&usbts_misc);
	if (ret) {
		usb_unregister_notify(&usb_nb);
		synchronize_srcu(&readers);
		cleanup_srcu_struct(&readers);
	}
	return ret;
}

static void __exit usbts_exit(void)
{
	misc_deregister(&usbts_misc);
	usb_unregister_notify(&usb_nb);
	mutex_lock(&hubs_lock);
	WRITE_ONCE(unloading, true);
	memset(hubs, 0, sizeof(hubs));
	mutex_unlock(&hubs_lock);
	synchronize_srcu(&readers);
	cleanup_srcu_struct(&readers);
}

module_init(usbts_init);
module_exit(usbts_exit);

MODULE_DESCRIPTION("xHCI MFINDEX reads bracketed by CLOCK_MONOTONIC");
MODULE_AUTHOR("The usbtimesync authors");
MODULE_LICENSE("Dual MIT/GPL");
MODULE_VERSION("0.1.0");
