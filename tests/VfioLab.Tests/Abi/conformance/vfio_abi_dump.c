/*
 * Prints the facts of the system's <linux/vfio.h> that VfioLab.Abi mirrors, one per line:
 *   sizeof   <struct> <bytes>
 *   offsetof <struct> <field> <bytes>
 *   ioctl    <MACRO> <request code>
 *   const    <MACRO> <value>
 * HeaderConformanceTests compiles and runs this program and compares every line with AbiLayout.
 * Keep this list and AbiLayout in step: an entry on one side only is reported as a difference.
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/vfio.h>

#define SIZE(s) printf("sizeof %s %zu\n", #s, sizeof(struct s))
#define OFF(s, f) printf("offsetof %s %s %zu\n", #s, #f, offsetof(struct s, f))
#define IOCTL(m) printf("ioctl %s %lu\n", #m, (unsigned long)(m))
#define CONST(m) printf("const %s %llu\n", #m, (unsigned long long)(m))

static void structs(void)
{
	SIZE(vfio_info_cap_header);
	OFF(vfio_info_cap_header, id);
	OFF(vfio_info_cap_header, version);
	OFF(vfio_info_cap_header, next);

	SIZE(vfio_group_status);
	OFF(vfio_group_status, argsz);
	OFF(vfio_group_status, flags);

	SIZE(vfio_device_info);
	OFF(vfio_device_info, argsz);
	OFF(vfio_device_info, flags);
	OFF(vfio_device_info, num_regions);
	OFF(vfio_device_info, num_irqs);
	OFF(vfio_device_info, cap_offset);

	SIZE(vfio_region_info);
	OFF(vfio_region_info, argsz);
	OFF(vfio_region_info, flags);
	OFF(vfio_region_info, index);
	OFF(vfio_region_info, cap_offset);
	OFF(vfio_region_info, size);
	OFF(vfio_region_info, offset);

	SIZE(vfio_region_sparse_mmap_area);
	OFF(vfio_region_sparse_mmap_area, offset);
	OFF(vfio_region_sparse_mmap_area, size);

	SIZE(vfio_region_info_cap_sparse_mmap);
	OFF(vfio_region_info_cap_sparse_mmap, header);
	OFF(vfio_region_info_cap_sparse_mmap, nr_areas);
	OFF(vfio_region_info_cap_sparse_mmap, reserved);
	OFF(vfio_region_info_cap_sparse_mmap, areas);

	SIZE(vfio_region_info_cap_type);
	OFF(vfio_region_info_cap_type, header);
	OFF(vfio_region_info_cap_type, type);
	OFF(vfio_region_info_cap_type, subtype);

	SIZE(vfio_region_info_cap_nvlink2_ssatgt);
	OFF(vfio_region_info_cap_nvlink2_ssatgt, header);
	OFF(vfio_region_info_cap_nvlink2_ssatgt, tgt);

	SIZE(vfio_region_info_cap_nvlink2_lnkspd);
	OFF(vfio_region_info_cap_nvlink2_lnkspd, header);
	OFF(vfio_region_info_cap_nvlink2_lnkspd, link_speed);
	OFF(vfio_region_info_cap_nvlink2_lnkspd, __pad);

	SIZE(vfio_irq_info);
	OFF(vfio_irq_info, argsz);
	OFF(vfio_irq_info, flags);
	OFF(vfio_irq_info, index);
	OFF(vfio_irq_info, count);

	SIZE(vfio_irq_set);
	OFF(vfio_irq_set, argsz);
	OFF(vfio_irq_set, flags);
	OFF(vfio_irq_set, index);
	OFF(vfio_irq_set, start);
	OFF(vfio_irq_set, count);
	OFF(vfio_irq_set, data);

	SIZE(vfio_pci_dependent_device);
	OFF(vfio_pci_dependent_device, group_id);
	OFF(vfio_pci_dependent_device, segment);
	OFF(vfio_pci_dependent_device, bus);
	OFF(vfio_pci_dependent_device, devfn);

	SIZE(vfio_pci_hot_reset_info);
	OFF(vfio_pci_hot_reset_info, argsz);
	OFF(vfio_pci_hot_reset_info, flags);
	OFF(vfio_pci_hot_reset_info, count);
	OFF(vfio_pci_hot_reset_info, devices);

	SIZE(vfio_pci_hot_reset);
	OFF(vfio_pci_hot_reset, argsz);
	OFF(vfio_pci_hot_reset, flags);
	OFF(vfio_pci_hot_reset, count);
	OFF(vfio_pci_hot_reset, group_fds);

	SIZE(vfio_iommu_type1_info);
	OFF(vfio_iommu_type1_info, argsz);
	OFF(vfio_iommu_type1_info, flags);
	OFF(vfio_iommu_type1_info, iova_pgsizes);
	OFF(vfio_iommu_type1_info, cap_offset);

	SIZE(vfio_iova_range);
	OFF(vfio_iova_range, start);
	OFF(vfio_iova_range, end);

	SIZE(vfio_iommu_type1_info_cap_iova_range);
	OFF(vfio_iommu_type1_info_cap_iova_range, header);
	OFF(vfio_iommu_type1_info_cap_iova_range, nr_iovas);
	OFF(vfio_iommu_type1_info_cap_iova_range, reserved);
	OFF(vfio_iommu_type1_info_cap_iova_range, iova_ranges);

	SIZE(vfio_iommu_type1_info_cap_migration);
	OFF(vfio_iommu_type1_info_cap_migration, header);
	OFF(vfio_iommu_type1_info_cap_migration, flags);
	OFF(vfio_iommu_type1_info_cap_migration, pgsize_bitmap);
	OFF(vfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size);

	SIZE(vfio_iommu_type1_info_dma_avail);
	OFF(vfio_iommu_type1_info_dma_avail, header);
	OFF(vfio_iommu_type1_info_dma_avail, avail);

	SIZE(vfio_iommu_type1_dma_map);
	OFF(vfio_iommu_type1_dma_map, argsz);
	OFF(vfio_iommu_type1_dma_map, flags);
	OFF(vfio_iommu_type1_dma_map, vaddr);
	OFF(vfio_iommu_type1_dma_map, iova);
	OFF(vfio_iommu_type1_dma_map, size);

	SIZE(vfio_bitmap);
	OFF(vfio_bitmap, pgsize);
	OFF(vfio_bitmap, size);
	OFF(vfio_bitmap, data);

	SIZE(vfio_iommu_type1_dma_unmap);
	OFF(vfio_iommu_type1_dma_unmap, argsz);
	OFF(vfio_iommu_type1_dma_unmap, flags);
	OFF(vfio_iommu_type1_dma_unmap, iova);
	OFF(vfio_iommu_type1_dma_unmap, size);
	OFF(vfio_iommu_type1_dma_unmap, data);

	SIZE(vfio_iommu_type1_dirty_bitmap);
	OFF(vfio_iommu_type1_dirty_bitmap, argsz);
	OFF(vfio_iommu_type1_dirty_bitmap, flags);
	OFF(vfio_iommu_type1_dirty_bitmap, data);

	SIZE(vfio_iommu_type1_dirty_bitmap_get);
	OFF(vfio_iommu_type1_dirty_bitmap_get, iova);
	OFF(vfio_iommu_type1_dirty_bitmap_get, size);
	OFF(vfio_iommu_type1_dirty_bitmap_get, bitmap);

	SIZE(vfio_iommu_spapr_tce_ddw_info);
	OFF(vfio_iommu_spapr_tce_ddw_info, pgsizes);
	OFF(vfio_iommu_spapr_tce_ddw_info, max_dynamic_windows_supported);
	OFF(vfio_iommu_spapr_tce_ddw_info, levels);

	SIZE(vfio_iommu_spapr_tce_info);
	OFF(vfio_iommu_spapr_tce_info, argsz);
	OFF(vfio_iommu_spapr_tce_info, flags);
	OFF(vfio_iommu_spapr_tce_info, dma32_window_start);
	OFF(vfio_iommu_spapr_tce_info, dma32_window_size);
	OFF(vfio_iommu_spapr_tce_info, ddw);

	SIZE(vfio_eeh_pe_err);
	OFF(vfio_eeh_pe_err, type);
	OFF(vfio_eeh_pe_err, func);
	OFF(vfio_eeh_pe_err, addr);
	OFF(vfio_eeh_pe_err, mask);

	SIZE(vfio_eeh_pe_op);
	OFF(vfio_eeh_pe_op, argsz);
	OFF(vfio_eeh_pe_op, flags);
	OFF(vfio_eeh_pe_op, op);
	OFF(vfio_eeh_pe_op, err);

	SIZE(vfio_iommu_spapr_register_memory);
	OFF(vfio_iommu_spapr_register_memory, argsz);
	OFF(vfio_iommu_spapr_register_memory, flags);
	OFF(vfio_iommu_spapr_register_memory, vaddr);
	OFF(vfio_iommu_spapr_register_memory, size);

	SIZE(vfio_iommu_spapr_tce_create);
	OFF(vfio_iommu_spapr_tce_create, argsz);
	OFF(vfio_iommu_spapr_tce_create, flags);
	OFF(vfio_iommu_spapr_tce_create, page_shift);
	OFF(vfio_iommu_spapr_tce_create, __resv1);
	OFF(vfio_iommu_spapr_tce_create, window_size);
	OFF(vfio_iommu_spapr_tce_create, levels);
	OFF(vfio_iommu_spapr_tce_create, __resv2);
	OFF(vfio_iommu_spapr_tce_create, start_addr);

	SIZE(vfio_iommu_spapr_tce_remove);
	OFF(vfio_iommu_spapr_tce_remove, argsz);
	OFF(vfio_iommu_spapr_tce_remove, flags);
	OFF(vfio_iommu_spapr_tce_remove, start_addr);
}

static void ioctls(void)
{
	IOCTL(VFIO_GET_API_VERSION);
	IOCTL(VFIO_CHECK_EXTENSION);
	IOCTL(VFIO_SET_IOMMU);
	IOCTL(VFIO_GROUP_GET_STATUS);
	IOCTL(VFIO_GROUP_SET_CONTAINER);
	IOCTL(VFIO_GROUP_UNSET_CONTAINER);
	IOCTL(VFIO_GROUP_GET_DEVICE_FD);
	IOCTL(VFIO_DEVICE_GET_INFO);
	IOCTL(VFIO_DEVICE_GET_REGION_INFO);
	IOCTL(VFIO_DEVICE_GET_IRQ_INFO);
	IOCTL(VFIO_DEVICE_SET_IRQS);
	IOCTL(VFIO_DEVICE_RESET);
	IOCTL(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO);
	IOCTL(VFIO_DEVICE_PCI_HOT_RESET);
	IOCTL(VFIO_DEVICE_QUERY_GFX_PLANE);
	IOCTL(VFIO_DEVICE_GET_GFX_DMABUF);
	IOCTL(VFIO_DEVICE_IOEVENTFD);
	IOCTL(VFIO_DEVICE_FEATURE);
	IOCTL(VFIO_IOMMU_GET_INFO);
	IOCTL(VFIO_IOMMU_MAP_DMA);
	IOCTL(VFIO_IOMMU_UNMAP_DMA);
	IOCTL(VFIO_IOMMU_ENABLE);
	IOCTL(VFIO_IOMMU_DISABLE);
	IOCTL(VFIO_IOMMU_DIRTY_PAGES);
	IOCTL(VFIO_IOMMU_SPAPR_TCE_GET_INFO);
	IOCTL(VFIO_EEH_PE_OP);
	IOCTL(VFIO_IOMMU_SPAPR_REGISTER_MEMORY);
	IOCTL(VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY);
	IOCTL(VFIO_IOMMU_SPAPR_TCE_CREATE);
	IOCTL(VFIO_IOMMU_SPAPR_TCE_REMOVE);
}

static void constants(void)
{
	CONST(VFIO_API_VERSION);
	CONST(VFIO_TYPE1_IOMMU);
	CONST(VFIO_SPAPR_TCE_IOMMU);
	CONST(VFIO_TYPE1v2_IOMMU);
	CONST(VFIO_DMA_CC_IOMMU);
	CONST(VFIO_EEH);
	CONST(VFIO_TYPE1_NESTING_IOMMU);
	CONST(VFIO_SPAPR_TCE_v2_IOMMU);
	CONST(VFIO_NOIOMMU_IOMMU);
	CONST(VFIO_UNMAP_ALL);
	CONST(VFIO_UPDATE_VADDR);

	CONST(VFIO_GROUP_FLAGS_VIABLE);
	CONST(VFIO_GROUP_FLAGS_CONTAINER_SET);

	CONST(VFIO_DEVICE_FLAGS_RESET);
	CONST(VFIO_DEVICE_FLAGS_PCI);
	CONST(VFIO_DEVICE_FLAGS_PLATFORM);
	CONST(VFIO_DEVICE_FLAGS_AMBA);
	CONST(VFIO_DEVICE_FLAGS_CCW);
	CONST(VFIO_DEVICE_FLAGS_AP);
	CONST(VFIO_DEVICE_FLAGS_FSL_MC);
	CONST(VFIO_DEVICE_FLAGS_CAPS);
	CONST(VFIO_DEVICE_INFO_CAP_ZPCI_BASE);
	CONST(VFIO_DEVICE_INFO_CAP_ZPCI_GROUP);
	CONST(VFIO_DEVICE_INFO_CAP_ZPCI_UTIL);
	CONST(VFIO_DEVICE_INFO_CAP_ZPCI_PFIP);

	CONST(VFIO_REGION_INFO_FLAG_READ);
	CONST(VFIO_REGION_INFO_FLAG_WRITE);
	CONST(VFIO_REGION_INFO_FLAG_MMAP);
	CONST(VFIO_REGION_INFO_FLAG_CAPS);
	CONST(VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	CONST(VFIO_REGION_INFO_CAP_TYPE);
	CONST(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
	CONST(VFIO_REGION_INFO_CAP_NVLINK2_SSATGT);
	CONST(VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD);

	CONST(VFIO_IRQ_INFO_EVENTFD);
	CONST(VFIO_IRQ_INFO_MASKABLE);
	CONST(VFIO_IRQ_INFO_AUTOMASKED);
	CONST(VFIO_IRQ_INFO_NORESIZE);

	CONST(VFIO_IRQ_SET_DATA_NONE);
	CONST(VFIO_IRQ_SET_DATA_BOOL);
	CONST(VFIO_IRQ_SET_DATA_EVENTFD);
	CONST(VFIO_IRQ_SET_ACTION_MASK);
	CONST(VFIO_IRQ_SET_ACTION_UNMASK);
	CONST(VFIO_IRQ_SET_ACTION_TRIGGER);

	CONST(VFIO_PCI_BAR0_REGION_INDEX);
	CONST(VFIO_PCI_BAR1_REGION_INDEX);
	CONST(VFIO_PCI_BAR2_REGION_INDEX);
	CONST(VFIO_PCI_BAR3_REGION_INDEX);
	CONST(VFIO_PCI_BAR4_REGION_INDEX);
	CONST(VFIO_PCI_BAR5_REGION_INDEX);
	CONST(VFIO_PCI_ROM_REGION_INDEX);
	CONST(VFIO_PCI_CONFIG_REGION_INDEX);
	CONST(VFIO_PCI_VGA_REGION_INDEX);
	CONST(VFIO_PCI_NUM_REGIONS);
	CONST(VFIO_PCI_INTX_IRQ_INDEX);
	CONST(VFIO_PCI_MSI_IRQ_INDEX);
	CONST(VFIO_PCI_MSIX_IRQ_INDEX);
	CONST(VFIO_PCI_ERR_IRQ_INDEX);
	CONST(VFIO_PCI_REQ_IRQ_INDEX);
	CONST(VFIO_PCI_NUM_IRQS);

	CONST(VFIO_IOMMU_INFO_PGSIZES);
	CONST(VFIO_IOMMU_INFO_CAPS);
	CONST(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	CONST(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	CONST(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);

	CONST(VFIO_DMA_MAP_FLAG_READ);
	CONST(VFIO_DMA_MAP_FLAG_WRITE);
	CONST(VFIO_DMA_MAP_FLAG_VADDR);
	CONST(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
	CONST(VFIO_DMA_UNMAP_FLAG_ALL);
	CONST(VFIO_DMA_UNMAP_FLAG_VADDR);
	CONST(VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	CONST(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	CONST(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP);

	CONST(VFIO_IOMMU_SPAPR_INFO_DDW);
	CONST(VFIO_EEH_PE_DISABLE);
	CONST(VFIO_EEH_PE_ENABLE);
	CONST(VFIO_EEH_PE_UNFREEZE_IO);
	CONST(VFIO_EEH_PE_UNFREEZE_DMA);
	CONST(VFIO_EEH_PE_GET_STATE);
	CONST(VFIO_EEH_PE_RESET_DEACTIVATE);
	CONST(VFIO_EEH_PE_RESET_HOT);
	CONST(VFIO_EEH_PE_RESET_FUNDAMENTAL);
	CONST(VFIO_EEH_PE_CONFIGURE);
	CONST(VFIO_EEH_PE_INJECT_ERR);
	CONST(VFIO_EEH_PE_STATE_NORMAL);
	CONST(VFIO_EEH_PE_STATE_RESET);
	CONST(VFIO_EEH_PE_STATE_STOPPED);
	CONST(VFIO_EEH_PE_STATE_STOPPED_DMA);
	CONST(VFIO_EEH_PE_STATE_UNAVAIL);
}

int main(void)
{
	structs();
	ioctls();
	constants();
	return 0;
}
